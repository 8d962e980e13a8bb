import { waitFor } from '@flowruns/testing';
import { underLoad } from './kit';

const KILLS = Number(process.env.FAULT_REPEATS ?? 3);

/**
 * kill -9 of each app, several times, under a steady load of triggers whose steps real workers run
 * and report. There is no hook for "mid-batch" or "between publish and mark": each kill lands
 * wherever the app is under load, which for these apps is almost always inside a batch (see
 * docs/reliability.md for what each one hits). After the faults the views must hold every accepted
 * run exactly once, SUCCEEDED with its three steps, and equal a rebuild from the topic.
 */
describe('kill -9 under load', () => {
  it(`the projector, ${KILLS} times: its uncommitted batch is redelivered and skipped as duplicates`, async () => {
    await underLoad('kill', 'kill -9 projector', async ({ sys, load, injected }) => {
      for (let k = 0; k < KILLS; k++) {
        // Kill while the projector has something in hand: the load has produced events it has not committed yet.
        await load.progressed(3);
        await sys.restart('projector', 0, 'SIGKILL');
        injected('kill -9 projector');
        await load.progressed(5);
      }
    });
  });

  // The window between the broker's ack and the mark's commit is a millisecond or two; one event
  // per relay batch makes the relay cycle publish → mark for every event, so more kills land in it.
  const commandKills = KILLS * 3;
  it(`the command service, ${commandKills} times, while its relay publishes: republished events make no duplicate views`, async () => {
    await underLoad(
      'kill',
      'kill -9 command-service',
      async ({ sys, load, injected }) => {
        for (let k = 0; k < commandKills; k++) {
          // Let unpublished rows pile up a little so the relay is mid-batch when the kill lands.
          await waitFor(async () => (await sys.sql<{ n: number }>(`select count(*)::int as n from run_events_outbox`))[0].n > 0, {
            timeoutMs: 10000,
            intervalMs: 5,
            what: 'the relay with rows in hand',
          }).catch(() => undefined);
          await sys.restart('command-service', 0, 'SIGKILL');
          injected('kill -9 command-service');
          await load.progressed(5);
        }
      },
      { ratePerSecond: 12, check: { expect: 'terminal' }, system: { env: { RELAY_BATCH_SIZE: '1' } } },
    );
  });

  it(`a flow worker, ${KILLS} times, mid-step: the other worker takes its runs over; no step runs twice`, async () => {
    await underLoad('kill', 'kill -9 flow-worker', async ({ sys, load, injected }) => {
      for (let k = 0; k < KILLS; k++) {
        const i = k % 2;
        // Mid-step: the victim holds leases on runs that have started a step and not finished it.
        await waitFor(
          async () =>
            (
              await sys.sql<{ n: number }>(
                `select count(*)::int as n from run_leases l join run_streams s on s.run_id = l.run_id
                  where l.worker_id like '%' || $1 || '%' and s.status = 'RUNNING'`,
                [String(sys.app('flow-worker', i).process.pid)],
              )
            )[0].n > 0,
          { timeoutMs: 10000, intervalMs: 20, what: 'the worker mid-run' },
        ).catch(() => undefined);
        await sys.restart('flow-worker', i, 'SIGKILL');
        injected('kill -9 flow-worker');
        await load.progressed(5);
      }
    });
  });

  it(`the retention app, ${KILLS} times, mid-batch: nothing purged twice, nothing lost`, async () => {
    await underLoad(
      'kill',
      'kill -9 retention',
      async ({ sys, load, injected }) => {
        for (let k = 0; k < KILLS; k++) {
          // Mid-batch: there are aged runs waiting, so the app is calling purge in a loop.
          await waitFor(
            async () =>
              (
                await sys.sql<{ n: number }>(
                  `select count(*)::int as n from run_streams s left join retention_marks m on m.project_id = s.project_id
                   where s.finished_at is not null and (m.project_id is null or (s.finished_at, s.run_id) > (m.finished_at, m.run_id))`,
                )
              )[0].n > 0,
            { timeoutMs: 20000, intervalMs: 20, what: 'purge candidates' },
          );
          await sys.restart('retention', 0, 'SIGKILL');
          injected('kill -9 retention');
          await load.progressed(5);
        }
        const [purged] = await sys.sql<{ n: number }>(`select count(*)::int as n from run_events where type = 'flowrun.execution-data-purged-through.v1'`);
        expect(purged.n).toBeGreaterThan(0);
      },
      { system: { retention: true } },
    );
  });
});
