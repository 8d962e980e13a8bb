import { Counter, Gauge, Histogram } from 'prom-client';

/** The retention app's Prometheus metrics (default registry, served at /metrics). Module-level: registered once. */
export const retentionMetrics = {
  runs: new Counter({ name: 'flowruns_retention_runs_purged_total', help: 'Runs whose execution data retention purged' }),
  records: new Counter({ name: 'flowruns_retention_records_purged_total', help: 'Execution-data records retention deleted' }),
  bytes: new Counter({ name: 'flowruns_retention_bytes_purged_total', help: 'Bytes of execution data retention deleted' }),
  batchSeconds: new Histogram({
    name: 'flowruns_retention_batch_seconds',
    help: 'Time of one purge batch (one command-service transaction), as the retention app saw it',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  }),
  waiting: new Gauge({
    name: 'flowruns_retention_runs_waiting',
    help: 'Runs whose execution data has expired and is not purged yet (measured after each pass)',
  }),
  passes: new Counter({ name: 'flowruns_retention_passes_total', help: 'Retention passes, by result', labelNames: ['result'] as const }),
};
