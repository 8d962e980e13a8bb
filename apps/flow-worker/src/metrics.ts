import { Counter, Gauge, Histogram } from 'prom-client';

/**
 * The worker's Prometheus metrics (default registry, served by MetricsModule at /metrics).
 * Module-level: prom-client refuses a second registration of the same name.
 */
export const workerMetrics = {
  steps: new Counter({
    name: 'flowruns_worker_steps_total',
    help: 'Steps executed, by step type and outcome (succeeded, failed, paused, waiting, aborted)',
    labelNames: ['type', 'outcome'] as const,
  }),
  stepSeconds: new Histogram({
    name: 'flowruns_worker_step_duration_seconds',
    help: 'Time to execute one step (without reporting it), by step type',
    labelNames: ['type'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  }),
  drivesActive: new Gauge({ name: 'flowruns_worker_drives_active', help: 'Runs being driven by this worker now' }),
  drivesQueued: new Gauge({ name: 'flowruns_worker_drives_queued', help: 'Runs leased by this worker and waiting for a free slot' }),
  drives: new Counter({
    name: 'flowruns_worker_drives_total',
    help: 'Drives ended, by outcome (succeeded, failed, paused, waiting, stopped, not-acquired, ...)',
    labelNames: ['outcome'] as const,
  }),
  leasesClaimed: new Counter({ name: 'flowruns_worker_leases_claimed_total', help: 'Expired leases (runs of dead workers) claimed by this worker' }),
  subflowCompletions: new Counter({
    name: 'flowruns_worker_subflow_completions_total',
    help: 'Child runs that ended, by what became of their parent step (reported, no-parent, parent-not-waiting, ...)',
    labelNames: ['result'] as const,
  }),
  messages: new Counter({
    name: 'flowruns_worker_messages_total',
    help: 'Run events consumed, by what the worker did (drive, child-ended, ignored, unknown, invalid)',
    labelNames: ['action'] as const,
  }),
  lag: new Gauge({
    name: 'flowruns_worker_consumer_lag',
    help: 'Messages on the run-events topic not yet committed by the worker group',
  }),
  partitionLag: new Gauge({
    name: 'flowruns_worker_partition_lag',
    help: 'Messages not yet committed by the worker group, per partition of the run-events topic',
    labelNames: ['partition'] as const,
  }),
};
