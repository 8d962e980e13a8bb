import type { EventEnvelope, KnownEnvelope } from '@flowruns/contracts';
import { evolveRun, skipUnknown, type RunProjection, type StepView, type UnprojectableReason } from './view';

/** An envelope `parseEnvelope` accepted: a known type with valid data, or a type to skip. */
export type ProjectableEnvelope =
  | { readonly kind: 'known'; readonly envelope: KnownEnvelope }
  | { readonly kind: 'unknown-type'; readonly envelope: EventEnvelope };

/** What the store knows about a run before a batch: its projection (if any) and whether it stalled. */
export interface LoadedRun {
  readonly projection: RunProjection | null;
  readonly stalled: boolean;
}

export type StallReason = 'gap' | UnprojectableReason;

/** A run whose projection stopped in this batch. Recorded once per run in `projection_stalls`. */
export interface StallReport {
  readonly runId: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly expectedSeq: number;
  readonly receivedSeq: number;
  readonly reason: StallReason;
}

/**
 * What a batch did. Every event lands in exactly one bucket, so the four counts add up to the
 * number of events handed in.
 */
export interface RunProjectionStats {
  /** Known events applied to their run's view. */
  readonly applied: number;
  /** Events whose `seq` was already applied (redelivery, relay republish): skipped. */
  readonly duplicates: number;
  /** Events not applied because their run is stalled, including the one that stalled it. */
  readonly gaps: number;
  /** Events of an unknown type at their run's next `seq`: only the version advanced. */
  readonly unknown: number;
  /** Runs that stalled in this batch (runs stalled earlier are not repeated). */
  readonly stalls: readonly StallReport[];
}

export interface FoldResult {
  readonly stats: RunProjectionStats;
  /** The final projection of every run whose version moved in this batch. */
  readonly changedRuns: readonly RunProjection[];
  /** Step rows that differ from what was loaded, for the runs in `changedRuns`. */
  readonly changedSteps: readonly StepView[];
}

/** Where an event stands against its run's version. */
export type SeqCheck = 'next' | 'duplicate' | 'gap';

export const checkSeq = (version: number, seq: number): SeqCheck =>
  seq <= version ? 'duplicate' : seq === version + 1 ? 'next' : 'gap';

interface Working {
  readonly loaded: RunProjection | null;
  projection: RunProjection | null;
  stalled: boolean;
}

/**
 * Folds a batch of events, in delivery order, over the runs' loaded state. Pure: the store loads
 * before and writes `changedRuns` / `changedSteps` / `stats.stalls` after.
 *
 * Rules: an event applies only when `seq = version + 1` (a run without a view has version 0);
 * `seq <= version` is a duplicate; anything else stalls the run (recorded once) and every later
 * event of a stalled run is skipped, in this batch and in every later one, until a rebuild.
 */
export function foldBatch(loaded: ReadonlyMap<string, LoadedRun>, items: readonly ProjectableEnvelope[]): FoldResult {
  const runs = new Map<string, Working>();
  const stalls: StallReport[] = [];
  let applied = 0;
  let duplicates = 0;
  let gaps = 0;
  let unknown = 0;

  for (const item of items) {
    const e = item.envelope;
    let w = runs.get(e.subject);
    if (!w) {
      const l = loaded.get(e.subject);
      w = { loaded: l?.projection ?? null, projection: l?.projection ?? null, stalled: l?.stalled ?? false };
      runs.set(e.subject, w);
    }
    const version = w.projection?.view.version ?? 0;
    const check = checkSeq(version, e.seq);
    if (check === 'duplicate') {
      duplicates++;
      continue;
    }
    if (w.stalled) {
      gaps++;
      continue;
    }
    const stall = (reason: StallReason) => {
      w.stalled = true;
      gaps++;
      stalls.push({
        runId: e.subject,
        eventId: e.id,
        eventType: e.type,
        expectedSeq: version + 1,
        receivedSeq: e.seq,
        reason,
      });
    };
    if (check === 'gap') {
      stall('gap');
      continue;
    }
    const r = item.kind === 'known' ? evolveRun(w.projection, item.envelope) : skipUnknown(w.projection, item.envelope);
    if (!r.ok) {
      stall(r.reason);
      continue;
    }
    w.projection = r.projection;
    if (item.kind === 'known') applied++;
    else unknown++;
  }

  const changedRuns: RunProjection[] = [];
  const changedSteps: StepView[] = [];
  for (const w of runs.values()) {
    if (!w.projection || w.projection === w.loaded) continue;
    changedRuns.push(w.projection);
    const before = w.loaded?.steps ?? {};
    // Steps are replaced, never mutated, so identity says whether a row changed.
    for (const [name, step] of Object.entries(w.projection.steps)) {
      if (before[name] !== step) changedSteps.push(step);
    }
  }
  return { stats: { applied, duplicates, gaps, unknown, stalls }, changedRuns, changedSteps };
}
