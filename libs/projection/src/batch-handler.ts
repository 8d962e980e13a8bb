import { EVENT_HEADERS, parseEnvelope } from '@flowruns/contracts';
import type { EventPublisher, MessageBatch, OutgoingMessage } from '@flowruns/messaging';
import { beginSpan, componentLogger, SpanKind, traceIdOf, tracingExports } from '@flowruns/platform';
import { applyBatch, type TransactionalEm } from './apply-batch';
import { deadLetterMessage } from './dead-letter';
import type { ProjectableEnvelope, RunProjectionStats } from './fold';

export interface ProjectionHandlerOptions {
  /**
   * Where a batch's transaction comes from: the projector's `PgTransactions` (a plain pg pool), or
   * a fresh MikroORM context (`orm.em.fork()`), never the global entity manager.
   */
  readonly entityManager: () => TransactionalEm;
  readonly deadLetters: EventPublisher;
  readonly deadLetterTopic: string;
  /** Written on dead-lettered messages so an operator knows which consumer gave up on them. */
  readonly consumerGroup: string;
}

export interface BatchOutcome extends RunProjectionStats {
  /** Messages sent to the dead-letter topic because they could not be parsed. */
  readonly deadLettered: number;
}

/**
 * Handles one partition batch for `KafkaBatchConsumer`: parses every message, applies the good ones
 * in one transaction, dead-letters the unparseable ones. Errors are classified by where they
 * happen: a message that cannot be parsed will never parse, so it is poison (dead-lettered, offset
 * committed); a database or broker error may pass, so it is thrown and the batch is redelivered.
 */
export class ProjectionBatchHandler {
  private readonly log = componentLogger('projection-handler');

  constructor(private readonly opts: ProjectionHandlerOptions) {}

  async handle(batch: MessageBatch): Promise<BatchOutcome> {
    const items: ProjectableEnvelope[] = [];
    const poison: OutgoingMessage[] = [];
    const traced = tracingExports() ? new Map<ProjectableEnvelope, string>() : null;
    // At debug level, one line per event with its ids as fields, to follow a trace through the logs.
    const logged = this.log.isLevelEnabled('debug') ? new Map<ProjectableEnvelope, string | undefined>() : null;
    const startedAt = Date.now();
    for (const m of batch.messages) {
      const parsed = parseEnvelope(m.value);
      switch (parsed.kind) {
        case 'known': {
          const item: ProjectableEnvelope = { kind: 'known', envelope: parsed.envelope };
          items.push(item);
          const tp = m.headers[EVENT_HEADERS.traceparent];
          if (traced && tp) traced.set(item, tp);
          logged?.set(item, tp);
          break;
        }
        case 'unknown-type':
          this.log.debug(
            { runId: parsed.envelope.subject, eventId: parsed.envelope.id, eventType: parsed.envelope.type },
            'skipping event of unknown type',
          );
          items.push({ kind: 'unknown-type', envelope: parsed.envelope });
          break;
        case 'invalid':
          this.log.error(
            { topic: m.topic, partition: m.partition, offset: m.offset, key: m.key, reason: parsed.reason },
            'unparseable message; sending it to the dead-letter topic',
          );
          poison.push(deadLetterMessage(m, parsed.reason, this.opts.consumerGroup));
          break;
        default: {
          const never: never = parsed;
          throw new Error(`unhandled parse result: ${JSON.stringify(never)}`);
        }
      }
    }
    // The database first: if the dead-letter publish then fails, the redelivered batch finds its
    // events already applied (duplicates) and only the publish is repeated.
    const stats = await applyBatch(this.opts.entityManager(), items);
    if (traced) this.traceApplied(traced, startedAt, items.length);
    if (logged) this.logCommitted(logged);
    if (poison.length) await this.opts.deadLetters.publish(this.opts.deadLetterTopic, poison);
    return { ...stats, deadLettered: poison.length };
  }

  /** After the commit, so a rolled-back (and redelivered) batch is not logged twice. */
  private logCommitted(logged: Map<ProjectableEnvelope, string | undefined>): void {
    for (const [item, traceparent] of logged) {
      const e = item.envelope;
      this.log.debug(
        { runId: e.subject, eventId: e.id, eventType: e.type, seq: e.seq, traceId: traceIdOf(traceparent) },
        'event projected (applied, or skipped as a duplicate or after a stall)',
      );
    }
  }

  /**
   * One span per projected event, a child of the command that appended it (its `traceparent`
   * header), spanning the batch's transaction: the view update closes the command's trace.
   * Only when spans are exported (the projector is the hottest path).
   */
  private traceApplied(traced: Map<ProjectableEnvelope, string>, startedAt: number, batchSize: number): void {
    for (const [item, traceparent] of traced) {
      const { span } = beginSpan(`projector.apply ${item.envelope.type}`, {
        kind: SpanKind.CONSUMER,
        parent: traceparent,
        startTime: startedAt,
        attributes: { 'run.id': item.envelope.subject, 'event.id': item.envelope.id, 'event.type': item.envelope.type, 'batch.size': batchSize },
      });
      span.end();
    }
  }
}
