import { EnvelopeException } from '@flowruns/platform';
import { encodeCursor } from '@flowruns/run-views';
import {
  BulkCancelBodySchema,
  PublishVersionBodySchema,
  parseListRunsQuery,
  parseResumeRequestId,
  parseStrictBody,
  parseTriggerHeaders,
  queryObject,
} from './requests';

const parse = (qs: string) => parseListRunsQuery(new URLSearchParams(qs));

/** The envelope a rejected query answers with. */
function rejection(qs: string) {
  try {
    parse(qs);
  } catch (e) {
    expect(e).toBeInstanceOf(EnvelopeException);
    return (e as EnvelopeException).envelope;
  }
  throw new Error(`accepted: ${qs}`);
}

describe('list query validation', () => {
  it('applies the defaults', () => {
    expect(parse('projectId=p1')).toEqual({ projectId: 'p1', limit: 10, includeArchived: false });
  });

  it('reads every filter', () => {
    const cursor = encodeCursor({ created: '2024-01-15T10:30:00.000001Z', id: 'r', direction: 'next' });
    expect(
      parse(
        `projectId=p1&flowId=f1&status=FAILED&status=TIMEOUT&tags[]=a&tags[]=b&failedStepName=s1` +
          `&createdAfter=2024-01-15T10:30:00.000Z&createdBefore=2024-01-16T00:00:00%2B02:00` +
          `&flowRunIds=r1&flowRunIds[]=r2&includeArchived=true&limit=100&cursor=${cursor}&unknown=ignored`,
      ),
    ).toEqual({
      projectId: 'p1',
      flowId: 'f1',
      status: ['FAILED', 'TIMEOUT'],
      tags: ['a', 'b'],
      failedStepName: 's1',
      createdAfter: '2024-01-15T10:30:00.000Z',
      createdBefore: '2024-01-16T00:00:00+02:00',
      flowRunIds: ['r1', 'r2'],
      includeArchived: true,
      limit: 100,
      cursor,
    });
  });

  it('treats one repeatable value as a list', () => {
    expect(parse('projectId=p1&status=RUNNING').status).toEqual(['RUNNING']);
    expect(queryObject(new URLSearchParams('status[0]=A&status[1]=B&x=1&x=2'))).toEqual({ status: ['A', 'B'], x: ['1', '2'] });
  });

  it.each([
    ['', 'projectId'],
    ['projectId=', 'projectId'],
    ['projectId=p1&limit=0', 'limit'],
    ['projectId=p1&limit=101', 'limit'],
    ['projectId=p1&limit=-1', 'limit'],
    ['projectId=p1&limit=1.5', 'limit'],
    ['projectId=p1&limit=', 'limit'],
    ['projectId=p1&cursor=abc', 'cursor'],
    ['projectId=p1&createdAfter=2024-01-15', 'createdAfter'],
    ['projectId=p1&createdAfter=2024-01-15T10:30:00', 'createdAfter'],
    ['projectId=p1&createdBefore=2024-02-30T00:00:00Z', 'createdBefore'],
    ['projectId=p1&status=FAILED&status=done', 'status'],
    ['projectId=p1&includeArchived=1', 'includeArchived'],
    ['projectId=p1&projectId=p2', 'projectId'],
    [`projectId=p1&flowRunIds=${Array.from({ length: 101 }, (_, i) => `r${i}`).join('&flowRunIds=')}`, 'flowRunIds'],
    // U+0000 reaches Postgres as text, which refuses it (it answered 500): every filter refuses it.
    ['projectId=p%00', 'projectId'],
    ['projectId=p1&flowId=%00', 'flowId'],
    ['projectId=p1&tags=a%00', 'tags'],
    ['projectId=p1&failedStepName=%00', 'failedStepName'],
    ['projectId=p1&flowRunIds=r1&flowRunIds=%00', 'flowRunIds'],
    [`projectId=p1&flowId=${'f'.repeat(257)}`, 'flowId'],
  ])('rejects %j naming %s', (qs, field) => {
    expect(rejection(qs)).toEqual({ statusCode: 400, code: 'VALIDATION', params: { field, message: expect.any(String) } });
  });
});

describe('nested-run headers', () => {
  it('defaults to no parent', () => {
    expect(parseTriggerHeaders({})).toEqual({ parentRunId: null, failParentOnFailure: false });
  });

  it('reads the parent and the flag, case-insensitively', () => {
    expect(parseTriggerHeaders({ 'ap-parent-run-id': 'run_1', 'ap-fail-parent-on-failure': 'TRUE' })).toEqual({
      parentRunId: 'run_1',
      failParentOnFailure: true,
    });
  });

  it('rejects a flag that is not true or false', () => {
    expect(() => parseTriggerHeaders({ 'ap-fail-parent-on-failure': 'yes' })).toThrow(EnvelopeException);
  });

  it('rejects a parent id with U+0000 or longer than 256 characters, naming the header', () => {
    for (const parent of ['run\u0000', 'r'.repeat(257)]) {
      expect(thrown(() => parseTriggerHeaders({ 'ap-parent-run-id': parent }))).toMatchObject({
        statusCode: 400,
        code: 'VALIDATION',
        params: { field: 'ap-parent-run-id' },
      });
    }
  });
});

/** The envelope a rejected call answers with. */
function thrown(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EnvelopeException);
    return (e as EnvelopeException).envelope;
  }
  throw new Error('accepted');
}

describe('bulk cancel body', () => {
  const parse = (body: unknown) => parseStrictBody(BulkCancelBodySchema, body);

  it('accepts every filter of the reference, and {}', () => {
    const body = {
      flowRunIds: ['r1'],
      excludeFlowRunIds: ['r2'],
      flowId: 'f1',
      status: ['PAUSED', 'RUNNING'],
      failedStepName: 's1',
      createdAfter: '2024-01-15T00:00:00.000Z',
      createdBefore: '2024-01-16T00:00:00+02:00',
      projectId: 'p1',
    };
    expect(parse(body)).toEqual(body);
    expect(parse({})).toEqual({});
  });

  it.each([
    [{ flowID: 'f1' }, 'flowID'],
    [{ status: ['SUCCEEDED'] }, 'status.0'],
    [{ flowRunIds: [] }, 'flowRunIds'],
    [{ createdBefore: '2024-01-16' }, 'createdBefore'],
    [{ flowId: '\u0000' }, 'flowId'],
    [{ flowRunIds: ['r1', 'r'.repeat(257)] }, 'flowRunIds.1'],
    ['cancel everything', 'body'],
  ])('rejects %j naming %s', (body, field) => {
    expect(thrown(() => parse(body))).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field } });
  });
});

describe('other bodies and parameters', () => {
  it('publishing a version: projectId optional, steps defaulted as the contract does', () => {
    expect(PublishVersionBodySchema.parse({ steps: [{ name: 'a', type: 'http' }] })).toEqual({
      steps: [{ name: 'a', type: 'http', settings: {} }],
    });
  });

  it('a resume request id within the contract’s length, else 400 naming it', () => {
    expect(parseResumeRequestId('req_1')).toBe('req_1');
    expect(thrown(() => parseResumeRequestId('x'.repeat(129)))).toMatchObject({ params: { field: 'requestId' } });
  });
});
