import { Histogram, register } from 'prom-client';

const NAME = 'flowruns_http_request_duration_seconds';

// One histogram per registry, even if this module is loaded twice (e.g. by two test apps).
const histogram =
  (register.getSingleMetric(NAME) as Histogram<'method' | 'route' | 'status'> | undefined) ??
  new Histogram({
    name: NAME,
    help: 'HTTP request duration by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });

interface TimedRequest {
  method: string;
  route?: { path?: unknown };
}
interface TimedResponse {
  statusCode: number;
  once(event: 'finish', fn: () => void): unknown;
}

/**
 * Express middleware timing every request until its response is finished, on every app (mounted
 * by `observeHttp`). The route label is the matched route
 * template (`/api/v1/flow-runs/:id`), never the raw path, so ids and probing for unknown paths
 * cannot explode the label set.
 */
export function httpMetrics() {
  return (req: TimedRequest, res: TimedResponse, next: () => void): void => {
    const stop = histogram.startTimer();
    res.once('finish', () => {
      const route = req.route?.path;
      stop({ method: req.method, route: typeof route === 'string' ? route : 'unmatched', status: String(res.statusCode) });
    });
    next();
  };
}
