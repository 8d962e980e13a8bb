import { recordFigures, underLoad, type AppName } from './kit';

const REPEATS = Number(process.env.FAULT_REPEATS ?? 3);
/** Longer than every app's own shutdown deadline (the worker's is FLOW_WORKER_SHUTDOWN_TIMEOUT_MS = 20 s). */
const DRAIN_DEADLINE_MS = 45000;

/**
 * SIGTERM of each app under load: it drains (finishes the work in hand, commits, leaves its group)
 * and exits by itself within a deadline, and nothing is lost. (It used to fail: the command service,
 * and sometimes the gateway, stopped listening but never exited while its keep-alive clients kept
 * their connections busy; `libs/platform/src/shutdown.ts` now drains.) For the gateway, draining also means that
 * no request already accepted on a connection is dropped: the load counts a dropped request as
 * `connection-error`, a refused one (the port closed) as `refused`.
 */
describe('SIGTERM under load', () => {
  const apps: AppName[] = ['projector', 'command-service', 'flow-worker', 'retention', 'api-gateway'];

  it(`each app, ${REPEATS} times: exits by itself after draining, and every accepted trigger is in the views`, async () => {
    const exits: Record<string, (number | null | 'hung')[]> = {};
    /** How long each SIGTERM took until the process was gone (ms). */
    const exitMs: Record<string, number[]> = {};
    const { load } = await underLoad(
      'sigterm',
      'SIGTERM of each app',
      async ({ sys, load, injected }) => {
        for (let k = 0; k < REPEATS; k++) {
          for (const name of apps) {
            // Drained means exited by itself; past the deadline it is recorded as hung and killed, so
            // the scenario (and its check of the views) still runs to the end.
            const app = sys.app(name);
            const signalledAt = Date.now();
            const exited = await Promise.race([
              app.stop('SIGTERM'),
              new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), DRAIN_DEADLINE_MS).unref()),
            ]);
            (exitMs[name] ??= []).push(Date.now() - signalledAt);
            if (exited === 'hung') await app.stop('SIGKILL');
            await sys.start(name);
            (exits[name] ??= []).push(exited);
            injected(`SIGTERM ${name}`);
            await load.progressed(3);
          }
        }
      },
      { system: { retention: true } },
    );
    recordFigures('sigterm', 'exit codes', { exits, exitMs, drainDeadlineMs: DRAIN_DEADLINE_MS });
    // Nest re-raises the signal once its shutdown hooks ran, so a drained app exits by SIGTERM (code
    // null) or 0; what must not happen is still running past the deadline.
    for (const name of apps) expect({ name, hung: exits[name].filter((e) => e === 'hung').length }).toEqual({ name, hung: 0 });
    // The gateway drained: no request in flight when it got SIGTERM was cut off.
    expect(load.count('connection-error')).toBe(0);
  });
});
