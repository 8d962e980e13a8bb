import { EVENT_HEADERS, type ParsedEnvelope } from '@flowruns/contracts';
import { traceIdOf } from '@flowruns/platform';

/** What a run event asks of the worker. */
export type WorkerAction =
  /** The run has steps to execute: drive it. `runningSince` is when it (re-)entered RUNNING, when the event says. */
  | { readonly kind: 'drive'; readonly runId: string; readonly runningSince?: string; readonly parentRunId?: string | null }
  /** The run ended: if it is a subflow's child, its parent's waiting step finishes. */
  | { readonly kind: 'child-ended'; readonly runId: string }
  | { readonly kind: 'ignore' };

const IGNORE: WorkerAction = { kind: 'ignore' };

/**
 * Maps one parsed message to the worker's action. Pure. Unknown types and invalid messages are
 * ignored: the projector dead-letters them, and a worker must skip types it does not know.
 */
export function routeEvent(parsed: ParsedEnvelope): WorkerAction {
  if (parsed.kind !== 'known') return IGNORE;
  const e = parsed.envelope;
  const runId = e.subject;
  switch (e.type) {
    case 'flowrun.triggered.v1':
      return { kind: 'drive', runId, runningSince: e.time, parentRunId: e.data.parentRunId };
    case 'flowrun.retried.v1':
      // ON_LATEST_VERSION creates a new run, which has its own triggered event.
      return e.data.strategy === 'FROM_FAILED_STEP' ? { kind: 'drive', runId, runningSince: e.time } : IGNORE;
    case 'flowrun.resumed.v1':
      return { kind: 'drive', runId, runningSince: e.time };
    case 'flowrun.step.succeeded.v1':
    case 'flowrun.step.failed.v1':
      // A subflow step finishes when its child ends (reported by a worker that saw the child end):
      // the parent, which stopped to wait, goes on.
      return e.data.stepType === 'subflow' ? { kind: 'drive', runId } : IGNORE;
    case 'flowrun.succeeded.v1':
    case 'flowrun.failed.v1':
    case 'flowrun.stopped.v1':
    case 'flowrun.timed-out.v1':
    case 'flowrun.quota-exceeded.v1':
    case 'flowrun.internal-error.v1':
      return { kind: 'child-ended', runId };
    case 'flowrun.step.started.v1':
    case 'flowrun.paused.v1':
    case 'flowrun.archived.v1':
    case 'flowrun.execution-data-purged.v1':
    case 'flowrun.execution-data-purged-through.v1':
      return IGNORE;
    default: {
      const unhandled: never = e;
      return unhandled;
    }
  }
}

/**
 * The fields of the worker's debug line about one consumed message: its run, event and trace (the
 * `traceparent` header), as the projector logs them. A message that is not an envelope has only
 * its key (the run id, as the relay publishes it) and the `ce-id` header to show.
 */
export function eventLogFields(
  parsed: ParsedEnvelope,
  msg: { readonly key: string | null; readonly headers: Readonly<Record<string, string>> },
): { runId?: string; eventId?: string; eventType?: string; seq?: number; traceId?: string } {
  const traceId = traceIdOf(msg.headers[EVENT_HEADERS.traceparent]);
  if (parsed.kind === 'invalid') return { runId: msg.key ?? undefined, eventId: msg.headers[EVENT_HEADERS.id], traceId };
  const e = parsed.envelope;
  return { runId: e.subject, eventId: e.id, eventType: e.type, seq: e.seq, traceId };
}
