import type { ExecutionContext } from '@nestjs/common';
import { ERROR_OUTCOME } from '@flowruns/platform';
import { EventEmitter } from 'node:events';
import { register, type Counter, type Histogram } from 'prom-client';
import { CommandMetricsGuard } from './command-metrics.guard';

/** A call to `handler` at `url`, and its response (an emitter with `locals`, as Express's). */
function call(handler: string, url = `/internal/runs/r1/${handler}`) {
  const res = Object.assign(new EventEmitter(), { locals: {} as Record<string, unknown> });
  const named = { [handler]: () => undefined }[handler];
  const ctx = {
    switchToHttp: () => ({ getRequest: () => ({ url }), getResponse: () => res }),
    getHandler: () => named,
  } as unknown as ExecutionContext;
  return { ctx, res };
}

const counted = async (command: string, outcome: string): Promise<number> => {
  const metric = register.getSingleMetric('flowruns_commands_total') as Counter<'command' | 'outcome'>;
  return (await metric.get()).values.find((v) => v.labels.command === command && v.labels.outcome === outcome)?.value ?? 0;
};
const timed = async (command: string): Promise<number> => {
  const metric = register.getSingleMetric('flowruns_command_duration_seconds') as Histogram<'command'>;
  return (await metric.get()).values.find((v) => v.metricName === 'flowruns_command_duration_seconds_count' && v.labels.command === command)?.value ?? 0;
};

describe('CommandMetricsGuard', () => {
  const guard = new CommandMetricsGuard();

  it('lets every call through and counts an internal call ok when its answer finishes, not before', async () => {
    const { ctx, res } = call('startStepSpec');
    expect(guard.canActivate(ctx)).toBe(true);
    expect(await counted('startStepSpec', 'ok')).toBe(0);
    res.emit('finish');
    expect(await counted('startStepSpec', 'ok')).toBe(1);
    expect(await timed('startStepSpec')).toBe(1);
  });

  it('counts the outcome the error filter left on the response instead of ok', async () => {
    const { ctx, res } = call('retrySpec');
    guard.canActivate(ctx);
    res.locals[ERROR_OUTCOME] = 'INVALID_TRANSITION';
    res.emit('finish');
    expect(await counted('retrySpec', 'INVALID_TRANSITION')).toBe(1);
    expect(await counted('retrySpec', 'ok')).toBe(0);
  });

  it('times a batch call but leaves its commands to the handler, unless the call itself failed', async () => {
    const ok = call('reports');
    guard.canActivate(ok.ctx);
    ok.res.emit('finish');
    expect(await counted('reports', 'ok')).toBe(0);
    expect(await timed('reports')).toBe(1);
    const failed = call('reports');
    guard.canActivate(failed.ctx);
    failed.res.locals[ERROR_OUTCOME] = 'error';
    failed.res.emit('finish');
    expect(await counted('reports', 'error')).toBe(1);
  });

  it('leaves probes and /metrics alone', async () => {
    const { ctx, res } = call('readySpec', '/health/ready');
    expect(guard.canActivate(ctx)).toBe(true);
    res.emit('finish');
    expect(await timed('readySpec')).toBe(0);
    expect(await counted('readySpec', 'ok')).toBe(0);
  });
});
