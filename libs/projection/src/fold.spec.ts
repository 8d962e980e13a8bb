import type { EventEnvelope } from '@flowruns/contracts';
import { checkSeq, foldBatch, type LoadedRun, type RunProjectionStats } from './fold';
import { fullRunHistory, interleave, RunHistory, toProjectable } from './testing/run-events';
import type { RunProjection } from './view';

const none = new Map<string, LoadedRun>();
const fold = (events: readonly EventEnvelope[], loaded: ReadonlyMap<string, LoadedRun> = none) =>
  foldBatch(loaded, toProjectable(events));
const total = (s: RunProjectionStats) => s.applied + s.duplicates + s.gaps + s.unknown;

/** Replays a fold's output as the store's state for the next batch. */
const asLoaded = (runs: readonly RunProjection[], stalled: readonly string[] = []): Map<string, LoadedRun> => {
  const out = new Map<string, LoadedRun>();
  for (const id of stalled) out.set(id, { projection: null, stalled: true });
  for (const p of runs) out.set(p.view.id, { projection: p, stalled: stalled.includes(p.view.id) });
  return out;
};

describe('checkSeq', () => {
  it.each([
    [0, 1, 'next'],
    [4, 5, 'next'],
    [4, 4, 'duplicate'],
    [4, 1, 'duplicate'],
    [4, 6, 'gap'],
    [0, 2, 'gap'],
  ] as const)('version %i, seq %i is %s', (version, seq, expected) => {
    expect(checkSeq(version, seq)).toBe(expected);
  });
});

describe('foldBatch', () => {
  it('applies a whole history in one batch and puts every event in exactly one bucket', () => {
    const h = fullRunHistory('run-a');
    const r = fold(h.events);
    expect(r.stats).toEqual({ applied: 16, duplicates: 0, gaps: 0, unknown: 0, stalls: [] });
    expect(r.changedRuns).toHaveLength(1);
    expect(r.changedRuns[0].view.version).toBe(16);
    expect(r.changedSteps.map((s) => s.stepName).sort()).toEqual(['approve', 'fetch', 'push']);
  });

  it('skips events at or below the version as duplicates and changes nothing', () => {
    const h = fullRunHistory('run-a');
    const first = fold(h.events);
    const again = fold(h.events, asLoaded(first.changedRuns));
    expect(again.stats).toEqual({ applied: 0, duplicates: 16, gaps: 0, unknown: 0, stalls: [] });
    expect(again.changedRuns).toEqual([]);
    expect(again.changedSteps).toEqual([]);
  });

  it('skips duplicates inside one batch (a republished prefix) and applies what follows', () => {
    const h = fullRunHistory('run-a');
    const e = h.events;
    const r = fold([e[0], e[1], e[2], e[0], e[1], e[2], e[3]]);
    expect(r.stats).toMatchObject({ applied: 4, duplicates: 3, gaps: 0 });
    expect(r.changedRuns[0].view.version).toBe(4);
  });

  it('stalls a run at a gap, records it once, skips its later events, and lets other runs go on', () => {
    const a = fullRunHistory('run-a').events;
    const b = fullRunHistory('run-b').events;
    const withGap = [a[0], a[1], a[3], a[4], a[2]]; // seq 3 arrives late: never guess
    const r = fold(interleave(withGap, b));
    expect(r.stats.stalls).toEqual([
      { runId: 'run-a', eventId: a[3].id, eventType: a[3].type, expectedSeq: 3, receivedSeq: 4, reason: 'gap' },
    ]);
    expect(r.stats).toMatchObject({ applied: 2 + 16, gaps: 3, duplicates: 0 });
    expect(total(r.stats)).toBe(5 + 16);
    const byId = new Map(r.changedRuns.map((p) => [p.view.id, p.view.version]));
    expect(byId).toEqual(new Map([['run-a', 2], ['run-b', 16]]));
  });

  it('keeps skipping a run stalled in an earlier batch, even an event that would now be in order', () => {
    const a = fullRunHistory('run-a').events;
    const first = fold([a[0], a[1], a[3]]);
    expect(first.stats.stalls).toHaveLength(1);
    const second = fold([a[2], a[3]], asLoaded(first.changedRuns, ['run-a']));
    expect(second.stats).toEqual({ applied: 0, duplicates: 0, gaps: 2, unknown: 0, stalls: [] });
    expect(second.changedRuns).toEqual([]);
  });

  it('still counts duplicates of a stalled run as duplicates', () => {
    const a = fullRunHistory('run-a').events;
    const first = fold([a[0], a[1], a[3]]);
    const second = fold([a[0], a[1]], asLoaded(first.changedRuns, ['run-a']));
    expect(second.stats).toMatchObject({ duplicates: 2, gaps: 0 });
  });

  it('advances the version over an unknown type at the next seq, so later known events still apply', () => {
    const h = new RunHistory('run-u');
    h.triggered();
    h.addRaw('flowrun.something-new.v1', { whatever: true });
    h.stepStarted('fetch');
    const r = fold(h.events);
    expect(r.stats).toEqual({ applied: 2, duplicates: 0, gaps: 0, unknown: 1, stalls: [] });
    expect(r.changedRuns[0].view.version).toBe(3);
    expect(r.changedRuns[0].view.status).toBe('RUNNING');
    expect(Object.keys(r.changedRuns[0].steps)).toEqual(['fetch']);
  });

  it('writes a run whose only new event is of an unknown type (its version moved)', () => {
    const h = new RunHistory('run-u');
    h.triggered();
    const first = fold(h.events);
    h.addRaw('flowrun.something-new.v1', {});
    const second = fold(h.events.slice(1), asLoaded(first.changedRuns));
    expect(second.stats.unknown).toBe(1);
    expect(second.changedRuns.map((p) => p.view.version)).toEqual([2]);
    expect(second.changedSteps).toEqual([]);
  });

  it('stalls a run whose first event is not the trigger (known or unknown type): there is no row to hold it', () => {
    const known = new RunHistory('run-k');
    known.stepStarted('fetch');
    const unknown = new RunHistory('run-u');
    unknown.addRaw('flowrun.triggered.v2', {});
    const r = fold([...known.events, ...unknown.events]);
    expect(r.stats.stalls.map((s) => [s.runId, s.reason, s.expectedSeq, s.receivedSeq])).toEqual([
      ['run-k', 'not-created', 1, 1],
      ['run-u', 'not-created', 1, 1],
    ]);
    expect(r.changedRuns).toEqual([]);
  });

  it('stalls a run that is triggered a second time', () => {
    const h = new RunHistory('run-t');
    h.triggered();
    h.triggered();
    const r = fold(h.events);
    expect(r.stats.stalls.map((s) => s.reason)).toEqual(['already-created']);
    expect(r.changedRuns[0].view.version).toBe(1);
  });

  it('reports only the step rows that changed since they were loaded', () => {
    const h = fullRunHistory('run-a');
    const first = fold(h.events.slice(0, 8)); // up to push failed
    const second = fold(h.events.slice(8, 12), asLoaded(first.changedRuns)); // failed, retried, push again
    expect(second.changedSteps.map((s) => [s.stepName, s.attempt, s.status])).toEqual([['push', 2, 'SUCCEEDED']]);
  });

  it('gives the same projection whether the history comes in one batch or one event per batch', () => {
    const events = interleave(fullRunHistory('run-a').events, fullRunHistory('run-b').events);
    const once = fold(events).changedRuns;
    let state = new Map<string, LoadedRun>();
    for (const e of events) {
      const r = fold([e], state);
      state = new Map([...state, ...asLoaded(r.changedRuns)]);
    }
    const sorted = (ps: Iterable<RunProjection>) => [...ps].sort((x, y) => x.view.id.localeCompare(y.view.id));
    expect(sorted([...state.values()].map((l) => l.projection as RunProjection))).toEqual(sorted(once));
  });
});
