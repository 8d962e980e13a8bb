import type { ArgumentsHost } from '@nestjs/common';
import { BadRequestException, ServiceUnavailableException } from '@nestjs/common';
import { bodyParserErrors, EnvelopeException, ERROR_OUTCOME, ErrorEnvelopeFilter } from './http-errors';

function answer(exception: unknown, path = '/api/v1/flow-runs') {
  const res = {
    code: 0,
    body: undefined as unknown,
    locals: {} as Record<string, unknown>,
    status(code: number) {
      this.code = code;
      return this;
    },
    json(body: unknown) {
      this.body = body;
      return this;
    },
  };
  const host = {
    switchToHttp: () => ({ getRequest: () => ({ method: 'GET', url: path, path }), getResponse: () => res }),
  } as unknown as ArgumentsHost;
  new ErrorEnvelopeFilter().catch(exception, host);
  return { status: res.code, body: res.body, outcome: res.locals[ERROR_OUTCOME] };
}

describe('ErrorEnvelopeFilter', () => {
  beforeAll(() => {
    process.env.LOG_LEVEL ??= 'silent';
  });

  it('answers a database outage with 503, not 500', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(answer(refused)).toEqual({
      status: 503,
      body: { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: { message: 'a dependency is unavailable; retry later' } },
      outcome: 'error',
    });
    const poolTimeout = Object.assign(new Error('Knex: Timeout acquiring a connection'), { name: 'KnexTimeoutError' });
    expect(answer(poolTimeout).status).toBe(503);
  });

  it('keeps envelopes and hides internals of unexpected errors', () => {
    // The metrics' outcome: the code of a refusal made on purpose, `error` for anything else.
    expect(answer(EnvelopeException.of('RUN_ARCHIVED', { entityId: 'r1' }))).toEqual({
      status: 409,
      body: { statusCode: 409, code: 'RUN_ARCHIVED', params: { entityId: 'r1' } },
      outcome: 'RUN_ARCHIVED',
    });
    expect(answer(new TypeError('x is undefined'))).toEqual({
      status: 500,
      body: { statusCode: 500, code: 'INTERNAL_ERROR', params: { message: 'internal error' } },
      outcome: 'error',
    });
    expect(answer(new BadRequestException('nope')).body).toMatchObject({ statusCode: 400, code: 'VALIDATION' });
  });

  it('keeps terminus’s body on a failed readiness check', () => {
    const details = { status: 'error', error: { kafka: { status: 'down' } } };
    expect(answer(new ServiceUnavailableException(details), '/health/ready')).toEqual({ status: 503, body: details, outcome: undefined });
  });
});

describe('bodyParserErrors', () => {
  const through = (err: unknown) => {
    let passed: unknown;
    bodyParserErrors(err, {}, {}, (e) => (passed = e));
    return passed;
  };

  it('turns body-parser errors into envelopes', () => {
    const tooLarge = through({ type: 'entity.too.large', limit: 1048576, status: 413 }) as EnvelopeException;
    expect(tooLarge.envelope).toEqual({ statusCode: 413, code: 'PAYLOAD_TOO_LARGE', params: { field: 'body', message: expect.any(String) } });
    const malformed = through(Object.assign(new SyntaxError('Unexpected end'), { type: 'entity.parse.failed', status: 400 })) as EnvelopeException;
    expect(malformed.envelope).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field: 'body' } });
    expect((through({ type: 'charset.unsupported', message: 'bad charset' }) as EnvelopeException).envelope.statusCode).toBe(400);
  });

  it('passes other errors on untouched', () => {
    const other = new Error('something else');
    expect(through(other)).toBe(other);
  });
});
