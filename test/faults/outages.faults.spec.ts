import { waitFor } from '@flowruns/testing';
import { FaultSystem, ownKafka, ownPostgres, readiness, underLoad, type AppName } from './kit';

const REPEATS = Number(process.env.FAULT_REPEATS ?? 3);
const ALL: AppName[] = ['command-service', 'projector', 'api-gateway', 'flow-worker'];
/** The apps that use Postgres (the flow worker has no database: its readiness is Kafka and the command service). */
const ON_POSTGRES: AppName[] = ['command-service', 'projector', 'api-gateway'];

/**
 * Outages of the dependencies, under load, several times: a Kafka broker stopped and started again
 * and a Postgres server stopped and started (and restarted). Both are servers of this suite's own,
 * on their own ports — the shared broker on 9092 and the shared Postgres on 5432 are never touched.
 * During an outage `/health/ready` goes false and comes back true without a restart, and every
 * request gets an answer within the load's deadline: 201, or a clean 503 envelope — never a hang.
 */
describe('dependency outages under load', () => {
  it(`the Kafka broker stopped and started ${REPEATS} times: triggers go on (the outbox holds the events), nothing lost`, async () => {
    const kafka = await ownKafka();
    const sys = await FaultSystem.start({ brokers: kafka.brokers });
    try {
      await underLoad(
        'outages',
        'Kafka broker stop/start',
        async ({ load, injected }) => {
          for (let k = 0; k < REPEATS; k++) {
            await kafka.stop();
            injected('Kafka broker stopped and started');
            for (const name of ['command-service', 'projector', 'flow-worker'] as AppName[]) {
              await waitFor(async () => (await readiness(sys.app(name))) === 503, { timeoutMs: 30000, what: `${name} not ready without Kafka` });
            }
            // The write path needs only Postgres: triggers are still accepted, their events wait in the outbox.
            await load.progressed(5);
            await kafka.start();
            for (const name of ALL) {
              await waitFor(async () => (await readiness(sys.app(name))) === 200, { timeoutMs: 90000, what: `${name} ready again with Kafka` });
            }
            await load.progressed(5);
          }
        },
        { sys },
      );
    } finally {
      await sys.stop();
      kafka.destroy();
    }
  });

  it(`the Postgres server stopped and started ${REPEATS} times, and restarted: clean 503s meanwhile, nothing accepted is lost`, async () => {
    const pg = await ownPostgres();
    const sys = await FaultSystem.start({ serverUrl: pg.url });
    try {
      await underLoad(
        'outages',
        'Postgres stop/start',
        async ({ load, injected }) => {
          for (let k = 0; k < REPEATS; k++) {
            await pg.stop();
            injected('Postgres stopped and started');
            for (const name of ON_POSTGRES) {
              await waitFor(async () => (await readiness(sys.app(name))) === 503, { timeoutMs: 30000, what: `${name} not ready without Postgres` });
            }
            const unavailable = load.count('unavailable');
            await waitFor(() => load.count('unavailable') >= unavailable + 3, { timeoutMs: 30000, what: 'clean 503s during the outage' });
            await pg.start();
            for (const name of ALL) {
              await waitFor(async () => (await readiness(sys.app(name))) === 200, { timeoutMs: 60000, what: `${name} ready again with Postgres` });
            }
            await load.progressed(5);
          }
          await pg.restart();
          injected('Postgres restarted (pg_ctl restart)');
          await load.progressed(10);
        },
        { sys },
      );
    } finally {
      await sys.stop();
      pg.destroy();
    }
  });
});
