import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ERROR_OUTCOME } from '@flowruns/platform';
import { Counter, Histogram, register } from 'prom-client';

// One of each per registry, even if this module is loaded twice (two test apps in one process).
const commands =
  (register.getSingleMetric('flowruns_commands_total') as Counter<'command' | 'outcome'> | undefined) ??
  new Counter({
    name: 'flowruns_commands_total',
    help: 'Commands handled by the command service, by command and outcome (ok, or the error code answered)',
    labelNames: ['command', 'outcome'],
  });
const durations =
  (register.getSingleMetric('flowruns_command_duration_seconds') as Histogram<'command'> | undefined) ??
  new Histogram({
    name: 'flowruns_command_duration_seconds',
    help: 'Time to handle one command (validation, the transaction, the answer), by command',
    labelNames: ['command'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });

/** Counts one command handled inside a batch call (`POST /internal/reports` counts each report). */
export const countCommand = (command: string, outcome: string): void => {
  commands.inc({ command, outcome });
};

/** Handlers that count their commands themselves (one call, many commands): timed here, not counted. */
const SELF_COUNTING = new Set(['reports', 'triggers']);

interface AnsweredResponse {
  locals: Record<string, unknown>;
  once(event: 'finish', fn: () => void): unknown;
}

/**
 * Counts and times every internal API call by its handler (`trigger`, `startStep`, `bulk`, …)
 * and outcome: `ok`, the envelope's code for a refusal (`INVALID_TRANSITION`, `VALIDATION`, …),
 * or `error` for anything unexpected (`ERROR_OUTCOME`, left on the response by the error filter).
 * A guard that lets every call through and watches its response finish, after the token guard (a
 * refused token is not a command), where an interceptor did this before: Nest binds an
 * `AsyncResource` twice per request for an interceptor, ~22 µs each on Node 20 (its DEP0172
 * accessors), more than the rest of this bookkeeping.
 */
@Injectable()
export class CommandMetricsGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const http = ctx.switchToHttp();
    // The internal API only: probes and /metrics are not commands.
    if (!http.getRequest<{ url: string }>().url.startsWith('/internal/')) return true;
    const command = ctx.getHandler().name;
    const stop = durations.startTimer({ command });
    const res = http.getResponse<AnsweredResponse>();
    res.once('finish', () => {
      stop();
      const failed = res.locals[ERROR_OUTCOME];
      if (typeof failed === 'string') commands.inc({ command, outcome: failed });
      else if (!SELF_COUNTING.has(command)) commands.inc({ command, outcome: 'ok' });
    });
    return true;
  }
}
