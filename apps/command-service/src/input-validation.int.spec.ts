import { INTERNAL_TOKEN_HEADER } from '@flowruns/contracts';
import { uniqueName } from '@flowruns/testing';
import { startCommandService, TEST_TOKEN, type TestCommandService } from './app.spec-helpers';

/**
 * Hostile input on the internal API answers 400 VALIDATION naming the field, never a 500 from
 * Postgres or a reply the gateway cannot read (which it turns into 503): U+0000 anywhere, ids past
 * 256 characters, JSON nested past COMMAND_SERVICE_JSON_MAX_DEPTH (real Postgres + Kafka).
 */
describe('command service internal API: hostile input answers 400', () => {
  let svc: TestCommandService;
  let flowId: string;
  const projectId = uniqueName('p_input');
  const NUL = String.fromCharCode(0);

  beforeAll(async () => {
    svc = await startCommandService({ COMMAND_SERVICE_JSON_MAX_DEPTH: '128' });
    const flow = await svc.call<{ id: string }>('POST', '/internal/flows', {
      projectId,
      displayName: 'input',
      steps: [{ name: 'a', type: 'approval', settings: {} }],
    });
    expect(flow.status).toBe(201);
    flowId = flow.body.id;
  });
  afterAll(async () => {
    await svc?.close();
  });

  /** A raw JSON text, for bodies JSON.stringify could not even write (400 000 levels). */
  async function postText(path: string, text: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${svc.url}${path}`, {
      method: 'POST',
      headers: { [INTERNAL_TOKEN_HEADER]: TEST_TOKEN, 'content-type': 'application/json' },
      body: text,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  const validation = (params: Record<string, unknown>) => ({ status: 400, body: { statusCode: 400, code: 'VALIDATION', params: expect.objectContaining(params) } });

  it('U+0000 in a path id, a query, a schema field or free-form JSON', async () => {
    expect(await svc.call('GET', '/internal/runs/%00/execution')).toMatchObject(validation({ field: 'runId' }));
    expect(await svc.call('POST', '/internal/runs/%00/resume', { requestId: 'q', body: {} })).toMatchObject(validation({ field: 'runId' }));
    expect(await svc.call('POST', `/internal/flows/${flowId}/runs`, { projectId, payload: {}, parentRunId: NUL })).toMatchObject(
      validation({ field: 'body', path: 'parentRunId' }),
    );
    expect(await svc.call('GET', '/internal/flows?projectId=%00')).toMatchObject(validation({ field: 'projectId' }));
    expect(await svc.call('POST', `/internal/flows/${flowId}/runs`, { projectId, payload: { text: `a${NUL}` } })).toMatchObject(
      validation({ field: 'body', path: 'payload.text' }),
    );
    expect(await svc.call('POST', '/internal/runs/bulk', { action: 'archive', projectId, filter: { flowId: NUL } })).toMatchObject(
      validation({ field: 'body', path: 'filter.flowId' }),
    );
    // An unpaired surrogate is refused too: jsonb rejects its `\ud800` escape.
    expect(await postText(`/internal/flows/${flowId}/runs`, JSON.stringify({ projectId, payload: ['\ud800'] }))).toMatchObject(
      validation({ field: 'body', path: 'payload.0' }),
    );
  });

  it('an id longer than 256 characters (a 4 544-character one made the resume path answer 500)', async () => {
    const id = encodeURIComponent(`%\\"'/`.repeat(909).slice(0, 4544));
    expect(await svc.call('POST', `/internal/runs/${id}/resume`, { requestId: 'q', body: {} })).toMatchObject(validation({ field: 'runId' }));
    expect(await svc.call('POST', `/internal/runs/${id}/steps/a/start`, { stepType: 'approval' })).toMatchObject(validation({ field: 'runId' }));
    expect(await svc.call('POST', `/internal/flows/${flowId}/runs`, { projectId, payload: {}, parentRunId: 'r'.repeat(257) })).toMatchObject(
      validation({ field: 'parentRunId' }),
    );
  });

  it('JSON nested past the bound, to 400 000 levels, in any request; the bound itself passes', async () => {
    for (const depth of [129, 10_000, 400_000]) {
      for (const [open, close] of [['[', ']'], ['{"a":', '}']]) {
        const payload = open.repeat(depth) + (open === '[' ? '' : '1') + close.repeat(depth);
        const trigger = await postText(`/internal/flows/${flowId}/runs`, `{"projectId":"${projectId}","payload":${payload}}`);
        expect({ depth, open, ...trigger }).toMatchObject({ depth, open, ...validation({ field: 'body', message: 'nested deeper than 128 levels of arrays and objects' }) });
        const resume = await postText('/internal/runs/r1/resume', `{"requestId":"q","body":${payload}}`);
        expect({ depth, open, ...resume }).toMatchObject({ depth, open, ...validation({ field: 'body' }) });
      }
    }
    // `{ payload: <127 levels> }` is 128 levels: accepted, and stored.
    const atBound = await postText(`/internal/flows/${flowId}/runs`, `{"projectId":"${projectId}","payload":${'['.repeat(127)}${']'.repeat(127)}}`);
    expect(atBound.status).toBe(201);
  });
});
