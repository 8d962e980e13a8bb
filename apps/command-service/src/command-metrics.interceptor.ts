import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { EnvelopeException } from '@flowruns/platform';
import { Counter, Histogram, register } from 'prom-client';
import { tap, type Observable } from 'rxjs';

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

/**
 * Counts and times every internal API call by its handler (`trigger`, `startStep`, `bulk`, …)
 * and outcome: `ok`, the envelope's code for a refusal (`INVALID_TRANSITION`, `VALIDATION`, …),
 * or `error` for anything unexpected.
 */
@Injectable()
export class CommandMetricsInterceptor implements NestInterceptor {
  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    // The internal API only: probes and /metrics are not commands.
    if (!ctx.switchToHttp().getRequest<{ url: string }>().url.startsWith('/internal/')) return next.handle();
    const command = ctx.getHandler().name;
    const stop = durations.startTimer({ command });
    const counted = !SELF_COUNTING.has(command);
    return next.handle().pipe(
      tap({
        next: () => {
          stop();
          if (counted) commands.inc({ command, outcome: 'ok' });
        },
        error: (e: unknown) => {
          stop();
          commands.inc({ command, outcome: e instanceof EnvelopeException ? e.envelope.code : 'error' });
        },
      }),
    );
  }
}
