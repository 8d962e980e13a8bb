import { Counter, Gauge, Histogram } from 'prom-client';

/**
 * The projector's Prometheus metrics (default registry, served by MetricsModule at /metrics).
 * Module-level: prom-client refuses a second registration of the same name.
 */
export const projectorMetrics = {
  /** Every consumed message lands in exactly one outcome, so the sum is the messages consumed. */
  events: new Counter({
    name: 'flowruns_projector_events_total',
    help: 'Run events consumed by the projector, by outcome (applied, duplicate, gap, unknown, dead_lettered)',
    labelNames: ['outcome'] as const,
  }),
  stalledRuns: new Counter({
    name: 'flowruns_projector_stalled_runs_total',
    help: 'Runs whose projection stopped because their events could not be applied in order',
    labelNames: ['reason'] as const,
  }),
  batchSeconds: new Histogram({
    name: 'flowruns_projector_batch_apply_seconds',
    help: 'Time to apply one partition batch (parse, one DB transaction, dead-letter publish)',
    labelNames: ['result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  }),
  lag: new Gauge({
    name: 'flowruns_projector_consumer_lag',
    help: 'Messages on the run-events topic not yet committed by the projector group',
  }),
  partitionLag: new Gauge({
    name: 'flowruns_projector_partition_lag',
    help: 'Messages not yet committed by the projector group, per partition of the run-events topic',
    labelNames: ['partition'] as const,
  }),
};
