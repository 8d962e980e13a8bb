import { waitFor } from '@flowruns/testing';
import {
  assertClean,
  deadLetterCount,
  FaultSystem,
  Load,
  poisonMessages,
  publishRaw,
  readiness,
  recordFigures,
  reportOf,
  settleAndMeasure,
  unknownTypeEvent,
  type AppName,
} from './kit';

/**
 * The part of the fault suite that fits in `npm test`: under a steady load, one kill -9 of each app,
 * poison and unknown messages on the topic, and one Postgres outage of the whole system; then every
 * accepted trigger is in the views exactly once and the views equal a rebuild. The full suite
 * (`npm run test:faults`) repeats each fault several times and adds broker and server restarts.
 */
describe('faults, quick: one of each under load', () => {
  let sys: FaultSystem;
  let load: Load;

  beforeAll(async () => {
    sys = await FaultSystem.start({ retention: true, proxyPostgres: true });
  });
  afterAll(async () => {
    await load?.stop();
    await sys?.stop();
  });

  it('kill -9 of each app, poison on the topic and a Postgres outage lose no accepted trigger', async () => {
    load = new Load(sys, { ratePerSecond: 8 }).start();
    const faults: Record<string, number> = {};
    const count = (k: string) => (faults[k] = (faults[k] ?? 0) + 1);
    await load.progressed(10);

    for (const name of ['projector', 'command-service', 'flow-worker', 'retention'] as AppName[]) {
      await sys.restart(name, 0, 'SIGKILL');
      count(`kill -9 ${name}`);
      await load.progressed(5);
    }

    const dlqBefore = await deadLetterCount(sys);
    const poison = poisonMessages(sys);
    await publishRaw(sys, [...poison, unknownTypeEvent(sys, 1), unknownTypeEvent(sys, 2)]);
    count('poison messages');
    count('unknown event types');
    await waitFor(async () => (await deadLetterCount(sys)) >= dlqBefore + poison.length, { timeoutMs: 30000, what: 'poison dead-lettered' });
    await load.progressed(5);

    // Postgres away for every app: readiness goes false, triggers answer a clean 503 quickly.
    const proxy = sys.pgProxy!;
    await proxy.cut();
    count('Postgres outage');
    const gateway = sys.app('api-gateway');
    await waitFor(async () => (await readiness(gateway)) === 503, { timeoutMs: 20000, what: 'gateway not ready without Postgres' });
    const before = load.count('unavailable');
    await waitFor(() => load.count('unavailable') >= before + 3, { timeoutMs: 30000, what: 'clean 503s during the outage' });
    await proxy.restore();
    for (const name of ['command-service', 'projector', 'api-gateway', 'flow-worker', 'retention'] as AppName[]) {
      await waitFor(async () => (await readiness(sys.app(name))) === 200, { timeoutMs: 60000, what: `${name} ready again` });
    }
    await load.progressed(10);

    await load.stop();
    await sys.assertAllAlive();
    const f = await settleAndMeasure(sys, load);
    recordFigures('quick', 'one of each', { ...reportOf(f, load, faults), problems: load.problems() });
    if (load.problems().length) recordFigures('quick-logs', 'one of each', { outputs: sys.outputs().split('\n') });
    assertClean(f, load);
    // Retention purged under the load (and every purged run's view agreed: assertClean).
    expect(f.purgedRuns).toBeGreaterThan(0);
    expect(load.problems()).toEqual([]);
  });
});
