import { INTERNAL_TOKEN_HEADER } from '@flowruns/contracts';
import { HttpCommandClient } from '@flowruns/engine';
import { CallBatcher, CommandServiceError, InternalApiClient, JsonText } from '@flowruns/platform';
import { createKafka } from '@flowruns/messaging';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Profile } from './profiles';
import { rawViewInsert } from './raw';
import { BenchSystem, benchEnv, CpuMeter, cpuMsPer, createTopic, deleteTopics, MemorySampler, pidsOf } from './system';
import { log, maxOf, percentile, round, uniqueName, waitFor } from './util';

/**
 * 1. Ingest, end to end: virtual engines drive runs through the command service's internal API
 * (trigger, then start + finish per step, then succeed: one event per report) for `durationS`, as
 * fast as `concurrency` of them can; the relay publishes, the projector projects. The engines
 * live in `workers` virtual workers, each reporting through the worker's own client
 * (`HttpCommandClient` with `batchReports`, as `FLOW_WORKER_REPORT_BATCH` sets it): the reports of
 * one worker's runs share calls. Triggers are one call each, as the gateway sends them. Then the
 * same messages straight to the broker with kafkajs, and the same view rows straight into Postgres.
 */
export async function benchIngest(profile: Profile) {
  const p = profile.ingest;
  const sys = await BenchSystem.create('ingest', { RELAY_POLL_INTERVAL_MS: '1000' });
  try {
    // Booted together (neither needs the other's address): two cores share the work.
    const [cs] = await Promise.all([sys.start('command-service'), sys.start('projector')]);
    const project = 'bench_ingest';
    const headers = { 'content-type': 'application/json', [INTERNAL_TOKEN_HEADER]: sys.env.INTERNAL_API_TOKEN };
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${cs.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      const text = await r.text();
      if (!r.ok) throw new Error(`${path}: ${r.status} ${text}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    const stepNames = Array.from({ length: p.steps }, (_, i) => `step_${i + 1}`);
    const flows: string[] = [];
    for (let f = 0; f < p.flows; f++) {
      const flow = await post('/internal/flows', {
        projectId: project,
        displayName: `Ingest flow ${f}`,
        tags: [`team-${f % 4}`],
        steps: stepNames.map((name) => ({ name, type: 'http', settings: {} })),
      });
      flows.push(String(flow.id));
    }

    const workers = Array.from(
      { length: p.workers },
      () =>
        new HttpCommandClient({
          baseUrl: cs.url,
          token: sys.env.INTERNAL_API_TOKEN,
          timeoutMs: 30000,
          batchReports: p.reportBatch > 0 ? { maxReports: p.reportBatch, maxChars: 1_000_000, maxInFlight: 2 } : undefined,
        }),
    );
    // Triggers as the gateway sends them: batched (GATEWAY_TRIGGER_BATCH) by one gateway's CallBatcher, or one call each.
    const internal = new InternalApiClient({ baseUrl: cs.url, token: sys.env.INTERNAL_API_TOKEN, timeoutMs: 30000 });
    const gateway =
      p.triggerBatch > 0
        ? new CallBatcher<Record<string, unknown>, { id: string }>({
            key: 'triggers',
            what: 'triggers',
            maxItems: p.triggerBatch,
            maxChars: 1_000_000,
            maxInFlight: 2,
            send: (body) => internal.call('POST', '/internal/triggers', new JsonText(body), 'refused-only'),
            refusal: (e) => new CommandServiceError(e.statusCode, e.code, e.params, 'POST /internal/triggers'),
          })
        : null;
    const triggerRun = (client: HttpCommandClient, flowId: string, body: { projectId: string; payload: unknown }) =>
      gateway ? gateway.submit({ flowId, ...body }) : client.triggerRun(flowId, body);
    const eventsPerRun = 2 * p.steps + 2;
    const callMs: number[] = [];
    const finished: { runId: string; acceptedAt: number }[] = [];
    let events = 0;
    let errors = 0;
    const timed = async <T>(call: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      const r = await call();
      callMs.push(performance.now() - t);
      events++;
      return r;
    };
    const mem = new MemorySampler(pidsOf(sys));
    const cpu = await CpuMeter.start(sys);
    const startedAt = Date.now();
    const deadline = startedAt + p.durationS * 1000;
    log(`ingest: ${p.concurrency} engines in ${p.workers} workers for ${p.durationS} s (report batches ≤ ${p.reportBatch}, trigger batches ≤ ${p.triggerBatch})`);
    await Promise.all(
      Array.from({ length: p.concurrency }, async (_, w) => {
        const client = workers[w % workers.length];
        let n = 0;
        while (Date.now() < deadline) {
          try {
            const run = await timed(() =>
              triggerRun(client, flows[(w + n++) % flows.length], {
                projectId: project,
                payload: { orderId: n, customer: { id: w, email: `user${w}@example.com` } },
              }),
            );
            const runId = run.id;
            for (const s of stepNames) {
              await timed(() => client.startStep(runId, s, { stepType: 'http' }));
              await timed(() =>
                client.finishStep(runId, s, {
                  status: 'SUCCEEDED',
                  input: { url: 'https://api.example.com/orders' },
                  output: { status: 200, body: { ok: true } },
                  durationMs: 5,
                }),
              );
            }
            await timed(() => client.succeed(runId, {}));
            finished.push({ runId, acceptedAt: Date.now() });
          } catch (e) {
            errors++;
            if (errors < 5) log(`ingest error: ${(e as Error).message}`);
          }
        }
      }),
    );
    const loadEnd = Date.now();
    const runs = finished.length;
    await waitFor(
      async () => {
        const [{ n }] = await sys.db.q<{ n: string }>(`select count(*)::text as n from run_views where status = 'SUCCEEDED'`);
        return Number(n) >= runs;
      },
      { timeoutMs: 300000, intervalMs: 200, what: 'the views to show every run' },
    );
    const memory = mem.stop();
    const cpuS = await cpu.stop();
    const visible = await sys.db.q<{ id: string; ms: string }>(
      `select id, (extract(epoch from updated_at) * 1000)::text as ms from run_views`,
    );
    const visibleAt = new Map(visible.map((v) => [v.id, Number(v.ms)]));
    const lags = finished.map((f) => (visibleAt.get(f.runId) ?? NaN) - f.acceptedAt).filter((x) => Number.isFinite(x));
    const lastVisible = maxOf(visibleAt.values());
    const completeEvents = runs * eventsPerRun;
    const e2eEventsPerS = completeEvents / ((lastVisible - startedAt) / 1000);
    log(`ingest: ${events} events accepted, ${runs} runs complete, ${round(e2eEventsPerS)} events/s end to end`);

    const raw = await rawLimits(sys);
    await sys.stop();
    const slower = Math.min(raw.kafkaMessagesPerS, raw.postgresRowsPerS);
    return {
      config: {
        ...p,
        eventsPerRun,
        commandBatch:
          p.reportBatch > 0
            ? `reports batched per worker (≤ ${p.reportBatch} per call, 2 calls in flight); triggers ${p.triggerBatch > 0 ? `batched as one gateway batches them (≤ ${p.triggerBatch} per call)` : 'one per call'}`
            : `one call per report; triggers ${p.triggerBatch > 0 ? `batched (≤ ${p.triggerBatch} per call)` : 'one per call'}`,
      },
      acceptedEvents: events,
      completeRuns: runs,
      errors,
      acceptedEventsPerS: round(events / ((loadEnd - startedAt) / 1000), 1),
      endToEndEventsPerS: round(e2eEventsPerS, 1),
      commandCallMs: { p50: round(percentile(callMs, 50), 2), p99: round(percentile(callMs, 99), 2) },
      projectionLagMs: { p50: round(percentile(lags, 50), 1), p99: round(percentile(lags, 99), 1), samples: lags.length },
      lagMeasuredAs: "run_views.updated_at of each run's last event (the projector's transaction time) minus the moment the command service answered it",
      memoryMiB: memory,
      // Load plus catch-up, per accepted event: robust to the machine's other load, unlike events/s.
      cpuMsPerEvent: cpuMsPer(cpuS, events),
      loadAverage: loadavg().map((x) => round(x, 2)),
      raw,
      ratioToSlowerRaw: round(e2eEventsPerS / slower, 3),
    };
  } catch (e) {
    await sys.stop().catch(() => undefined);
    throw e;
  }
}

/** The raw limits on the same machine, with the same messages and the same rows. */
async function rawLimits(sys: BenchSystem) {
  // Kafka: the ingest's envelopes, as the relay sends them (key = run id, batches of 500, acks=all, idempotent).
  const rows = await sys.db.q<{ run_id: string; value: string; type: string; id: string }>(
    `select run_id, envelope::text as value, type, event_id as id from run_events order by position`,
  );
  const topic = uniqueName('bench-raw-kafka');
  await createTopic(topic, 12);
  const kafka = createKafka({ brokers: benchEnv().kafkaBrokers, clientId: 'flow-runs-bench-raw' });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += 500) {
    await producer.send({
      topic,
      acks: -1,
      messages: rows.slice(i, i + 500).map((r) => ({
        key: r.run_id,
        value: r.value,
        headers: { 'ce-type': r.type, 'ce-schemaversion': '1', 'ce-id': r.id },
      })),
    });
  }
  const kafkaS = (performance.now() - t0) / 1000;
  await producer.disconnect();
  await deleteTopics([topic, `${topic}.dlq`]);

  // Postgres: the final view rows, inserted into an empty copy of the read model (same indexes).
  const pg = await rawViewInsert(sys.db, { runs: 'run_views', steps: 'step_views' });
  return {
    kafkaMessages: rows.length,
    kafkaMessagesPerS: round(rows.length / kafkaS, 1),
    kafkaHow: 'kafkajs 2.2.4, idempotent producer, acks=all, 500 messages per send, one send at a time (as the relay)',
    postgresRows: pg.rows,
    postgresRowsPerS: pg.rowsPerS,
    postgresHow: pg.how,
  };
}
