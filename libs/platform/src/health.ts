import { Controller, Get, Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  TerminusModule,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { stopTracing } from './tracing';

/**
 * One dependency a process needs before it can do useful work. `check` throws when it is down; what
 * it returns becomes the probe's details (not a key named `status`: terminus reserves it).
 */
export interface ReadinessProbe {
  readonly name: string;
  check(): Promise<Record<string, unknown> | void>;
}

export const READINESS_PROBES = Symbol('READINESS_PROBES');

/** Tracks shutdown so that readiness goes false while a process drains. */
export class Lifecycle {
  shuttingDown = false;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly lifecycle: Lifecycle,
    @Inject(READINESS_PROBES) private readonly probes: ReadinessProbe[],
  ) {}

  /** Liveness: the process answers. Never depends on Postgres or Kafka (a restart would not help). */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([async () => this.indicators.check('process').up({ pid: process.pid })]);
  }

  /** Readiness: every dependency answers within its deadline, and the process is not draining. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      async (): Promise<HealthIndicatorResult> => {
        const i = this.indicators.check('lifecycle');
        return this.lifecycle.shuttingDown ? i.down({ message: 'shutting down' }) : i.up();
      },
      ...this.probes.map((probe) => async (): Promise<HealthIndicatorResult> => {
        const i = this.indicators.check(probe.name);
        try {
          const details = await withTimeout(probe.check(), 2000, probe.name);
          return i.up(details ?? {});
        } catch (e) {
          return i.down({ message: (e as Error).message });
        }
      }),
    ]);
  }
}

/**
 * `/health/live` and `/health/ready` with @nestjs/terminus. The app supplies its probes as a
 * provider of `READINESS_PROBES` (an array), built from whatever clients it already holds.
 */
/** Exports the spans still buffered when the app shuts down (every app has a HealthModule). */
@Injectable()
class TracingFlush implements OnApplicationShutdown {
  onApplicationShutdown(): Promise<void> {
    return stopTracing();
  }
}

@Module({})
export class HealthModule {
  static forProbes(probes: Provider): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ errorLogStyle: 'json', gracefulShutdownTimeoutMs: 0 })],
      controllers: [HealthController],
      providers: [probes, Lifecycle, TracingFlush],
      exports: [Lifecycle],
    };
  }
}
