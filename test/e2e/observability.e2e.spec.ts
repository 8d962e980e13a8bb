import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '@flowruns/testing';
import { gatewayClient, newApiKey } from './client';
import { startSystem, type RunningApp } from './harness';

interface CollectedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}
interface OtlpExport {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: OtlpAttribute[] }[] }[];
  }[];
}

const attrs = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));

/** A stand-in OpenTelemetry collector: OTLP/HTTP with JSON bodies on /v1/traces, kept in memory. */
async function startCollector() {
  const spans: CollectedSpan[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces' && (req.headers['content-type'] ?? '').includes('json')) {
        const payload = JSON.parse(body) as OtlpExport;
        for (const rs of payload.resourceSpans) {
          const service = String(attrs(rs.resource.attributes)['service.name']);
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
              spans.push({ service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, attributes: attrs(s.attributes) });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, close: () => new Promise((r) => server.close(r)) };
}

/** Every JSON line an app writes on stdout from now on (the harness's output() keeps only the tail). */
function collectLogs(app: RunningApp): () => Record<string, unknown>[] {
  let text = '';
  app.process.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  return () =>
    text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const APPS = ['command-service', 'api-gateway', 'flow-worker', 'retention', 'projector'] as const;

/** One trace follows a command from the gateway through the command service, Kafka, the projector and the worker. */
describe('observability: one trace from a trigger to its view update; metrics on every app', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let apps: Record<(typeof APPS)[number], RunningApp>;
  let logs: Record<(typeof APPS)[number], () => Record<string, unknown>[]>;
  const projectId = 'proj_tracing';

  beforeAll(async () => {
    collector = await startCollector();
    system = await startSystem(['command-service', 'api-gateway', 'flow-worker', 'retention', 'projector'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      // The relay, the worker and the projector log each event they handle at debug level only.
      LOG_LEVEL: 'debug',
      // The worker measures its lag only on this timer (the projector's readiness probe measures it too).
      FLOW_WORKER_LAG_INTERVAL_MS: '1000',
    });
    apps = system.apps as Record<(typeof APPS)[number], RunningApp>;
    logs = Object.fromEntries(APPS.map((a) => [a, collectLogs(apps[a])])) as typeof logs;
    api = gatewayClient(apps['api-gateway'].url, (await newApiKey(system.db.url, projectId)).key);
  });
  afterAll(async () => {
    await system?.stop();
    await collector?.close();
  });

  it('every app serves HTTP latency by route and status, and the metrics issue 8 names', async () => {
    const flow = await api.post('/api/v1/flows', { projectId, displayName: 'Metered', steps: [{ name: 'a', type: 'transform', settings: { value: 1 } }] });
    const run = await api.post(`/api/v1/flows/${flow.body.id}/run`, {});
    await api.waitForRun(run.body.id as string, 'SUCCEEDED');
    expect((await api.post(`/api/v1/flow-runs/${run.body.id}/retry`, { projectId, strategy: 'FROM_FAILED_STEP' })).status).toBe(409);
    const metrics = async (app: (typeof APPS)[number]) => (await fetch(`${apps[app].url}/metrics`)).text();
    // Every app times its requests by route template and status (the harness's readiness polls at least).
    for (const app of APPS) {
      const timed = (await metrics(app)).split('\n').filter((l) => l.startsWith('flowruns_http_request_duration_seconds_count'));
      expect({ app, timed }).toEqual({ app, timed: expect.arrayContaining([expect.stringMatching(/\{method="GET",route="\/health\/ready",status="200"\} [1-9]/)]) });
    }
    const command = await metrics('command-service');
    // Triggers reach it in batches (GATEWAY_TRIGGER_BATCH): the call is timed, each trigger counted.
    expect(command).toMatch(/^flowruns_http_request_duration_seconds_count\{method="POST",route="\/internal\/triggers",status="200"\} [1-9]/m);
    expect(command).toMatch(/^flowruns_commands_total\{command="trigger",outcome="ok"\} [1-9]/m);
    expect(command).toMatch(/^flowruns_commands_total\{command="startStep",outcome="ok"\} [1-9]/m);
    expect(command).toMatch(/^flowruns_commands_total\{command="retry",outcome="INVALID_TRANSITION"\} 1$/m);
    expect(command).toMatch(/^flowruns_command_duration_seconds_count\{command="triggers"\} [1-9]/m);
    expect(command).toMatch(/^flowruns_events_published_total [1-9]/m);
    expect(await metrics('api-gateway')).toMatch(/^flowruns_http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/flows\/:flowId\/run",status="201"\} [1-9]/m);
    expect(await metrics('flow-worker')).toMatch(/^flowruns_worker_step_duration_seconds_count\{type="transform"\} [1-9]/m);
    const projector = await metrics('projector');
    // Consumer lag per partition: one series for each of the topic's 3 partitions, for the
    // projector's group and the worker's (whose timer may not have fired yet).
    const partitionsWithLag = (text: string, app: string) =>
      new Set([...text.matchAll(new RegExp(`^flowruns_${app}_partition_lag\\{partition="(\\d+)"\\} \\d+$`, 'gm'))].map((m) => m[1]));
    expect(partitionsWithLag(projector, 'projector')).toEqual(new Set(['0', '1', '2']));
    const worker = await waitFor(
      async () => {
        const text = await metrics('flow-worker');
        return partitionsWithLag(text, 'worker').size === 3 ? text : undefined;
      },
      { timeoutMs: 10000, what: 'the worker lag gauge on each of the 3 partitions' },
    );
    expect(partitionsWithLag(worker, 'worker')).toEqual(new Set(['0', '1', '2']));
    expect(worker).toMatch(/^flowruns_worker_consumer_lag \d+$/m);
    // Projection apply time.
    expect(projector).toMatch(/^flowruns_projector_batch_apply_seconds_count\{result="committed"\} [1-9]/m);
    // Purge counters (retention.e2e.spec.ts moves them with a real purge; here: served from the start).
    const retention = await metrics('retention');
    for (const name of ['runs_purged_total', 'records_purged_total', 'bytes_purged_total']) expect(retention).toMatch(new RegExp(`^flowruns_retention_${name} \\d+$`, 'm'));
    // The pass at start completes (the first pass ran against an empty database).
    await waitFor(async () => /^flowruns_retention_passes_total\{result="complete"\} [1-9]/m.test(await metrics('retention')), {
      timeoutMs: 10000,
      what: 'a complete retention pass counted',
    });
  });

  it('parents every hop on the one before it, and puts the trace id on the log lines of each app', async () => {
    const flow = await api.post('/api/v1/flows', {
      projectId,
      displayName: 'Traced',
      steps: [
        { name: 'first', type: 'transform', settings: { value: 1 } },
        { name: 'second', type: 'transform', settings: { value: 2 } },
      ],
    });
    expect(flow.status).toBe(201);
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const callerSpan = '1122334455667788';
    const run = await api.post(`/api/v1/flows/${flow.body.id}/run`, { hello: 'trace' }, { traceparent: `00-${traceId}-${callerSpan}-01` });
    expect(run.status).toBe(201);
    await api.waitForRun(run.body.id as string, 'SUCCEEDED');

    const inTrace = () => collector.spans.filter((s) => s.traceId === traceId);
    const spans = await waitFor(
      async () => {
        const s = inTrace();
        const done =
          s.some((x) => x.service === 'projector' && x.attributes['event.type'] === 'flowrun.succeeded.v1') &&
          s.some((x) => x.service === 'flow-worker' && x.name === 'step second') &&
          s.some((x) => x.service === 'flow-worker' && x.name === 'flow-worker.drive') &&
          s.filter((x) => x.service === 'command-service').length >= 5;
        return done ? s : undefined;
      },
      { timeoutMs: 20000, what: `the spans of trace ${traceId} (have ${inTrace().map((x) => `${x.service}:${x.name}`).join(', ')})` },
    );
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (s: CollectedSpan) => byId.get(s.parentSpanId);

    // The gateway's request span is a child of the caller's span.
    const gateway = spans.find((s) => s.service === 'api-gateway' && s.name === 'POST /api/v1/flows/:flowId/run');
    expect(gateway?.parentSpanId).toBe(callerSpan);
    expect(gateway?.attributes['http.response.status_code']).toBe(201);
    // The command service's span for the trigger is a child of the gateway's (the trigger went in a
    // batch, GATEWAY_TRIGGER_BATCH being on by default: each trigger of a batch has its own span).
    const trigger = spans.find((s) => s.service === 'command-service' && s.name === 'command-service.trigger' && parentOf(s) === gateway);
    expect(trigger).toBeDefined();
    // The projector applied the trigger's events as children of that command.
    const projected = spans.filter((s) => s.service === 'projector' && parentOf(s) === trigger);
    expect(projected.map((s) => s.attributes['event.type'])).toContain('flowrun.triggered.v1');
    expect(projected.every((s) => s.attributes['run.id'] === run.body.id)).toBe(true);
    // The worker's drive continues from an event of this run; each step is a span in it, and the
    // command service's handling of the step's reports (its start, then its finish, each with its
    // own span inside the batch call, FLOW_WORKER_REPORT_BATCH being on by default) is a child of the step.
    const drive = spans.find((s) => s.service === 'flow-worker' && s.name === 'flow-worker.drive');
    expect(parentOf(drive!)?.service).toBe('command-service');
    for (const name of ['first', 'second']) {
      const step = spans.find((s) => s.service === 'flow-worker' && s.name === `step ${name}`);
      expect(parentOf(step!)).toBe(drive);
      const reports = spans.filter((s) => s.service === 'command-service' && parentOf(s) === step && s.name.startsWith('command-service.report '));
      expect(reports.map((s) => s.name).sort()).toEqual(['command-service.report finishStep', 'command-service.report startStep']);
    }

    // Log lines written while handling a request carry its trace id as a field: a last command
    // (archive) with a trace of its own, found in the request logs of the gateway and the command service.
    const archiveTrace = 'f0e1d2c3b4a5968778695a4b3c2d1e0f';
    const archived = await api.post('/api/v1/flow-runs/archive', { flowRunIds: [run.body.id] }, { traceparent: `00-${archiveTrace}-${callerSpan}-01` });
    expect(archived.body).toEqual({ archived: 1 });
    for (const app of ['api-gateway', 'command-service'] as const) {
      await waitFor(
        () => logs[app]().some((l) => l.traceId === archiveTrace && typeof l.spanId === 'string' && typeof l.req === 'object'),
        { timeoutMs: 5000, what: `a request log line of ${app} with traceId ${archiveTrace}` },
      );
    }
  });
  it('writes the run id, the event id and the trace id as fields of the log lines that follow a command', async () => {
    const flow = await api.post('/api/v1/flows', { projectId, displayName: 'Logged', steps: [{ name: 'only', type: 'transform', settings: { value: 1 } }] });
    const traceId = '0badc0ffee0ddf00d0badc0ffee0ddf0';
    const traceparent = (t: string) => `00-${t}-1122334455667788-01`;
    const run = await api.post(`/api/v1/flows/${flow.body.id}/run`, {}, { traceparent: traceparent(traceId) });
    expect(run.status).toBe(201);
    const runId = run.body.id as string;
    await api.waitForRun(runId, 'SUCCEEDED');
    const readTrace = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    expect((await api.get(`/api/v1/flow-runs/${runId}`, { traceparent: traceparent(readTrace) })).status).toBe(200);

    const lineOf = (app: (typeof APPS)[number], what: string, match: (l: Record<string, unknown>) => boolean) =>
      waitFor(() => logs[app]().find(match), { timeoutMs: 10000, what: `${what} in the logs of ${app}` });

    // The projector: one line per event, its run, event and trace as fields.
    const projected = await lineOf('projector', `the trigger of ${runId} projected`, (l) => l.runId === runId && l.eventType === 'flowrun.triggered.v1');
    expect(projected).toMatchObject({ level: 'debug', service: 'projector', traceId, seq: 1, eventId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const succeeded = await lineOf('projector', `the success of ${runId} projected`, (l) => l.runId === runId && l.eventType === 'flowrun.succeeded.v1');
    expect(succeeded.eventId).not.toBe(projected.eventId);
    expect(succeeded.traceId).toBe(traceId);
    // The same trigger event as the relay published it and as the worker handled it (a drive).
    const published = await lineOf('command-service', `the trigger of ${runId} published`, (l) => l.runId === runId && l.eventType === 'flowrun.triggered.v1');
    expect(published).toMatchObject({ level: 'debug', component: 'relay-service', msg: 'event published', eventId: projected.eventId, traceId });
    const handled = await lineOf('flow-worker', `the trigger of ${runId} handled`, (l) => l.runId === runId && l.eventType === 'flowrun.triggered.v1');
    expect(handled).toMatchObject({ level: 'debug', msg: 'event handled', action: 'drive', seq: 1, eventId: projected.eventId, traceId });
    const workerEnd = await lineOf('flow-worker', `the success of ${runId} handled`, (l) => l.runId === runId && l.eventType === 'flowrun.succeeded.v1');
    expect(workerEnd).toMatchObject({ action: 'child-ended', eventId: succeeded.eventId, traceId });
    // The command service: the worker's step reports (a batch call, which names no run) in the trace the worker continued.
    const report = await lineOf('command-service', `a report call in trace ${traceId}`, (l) => l.traceId === traceId && (l.req as { url?: string })?.url === '/internal/reports');
    expect(report).toMatchObject({ service: 'command-service', msg: 'request completed', res: { statusCode: 200 } });
    // The gateway: a read of the run, with its own trace.
    const read = await lineOf('api-gateway', `the read of ${runId}`, (l) => l.traceId === readTrace);
    expect(read).toMatchObject({ service: 'api-gateway', runId, spanId: expect.stringMatching(/^[0-9a-f]{16}$/), res: { statusCode: 200 } });
  });
});
