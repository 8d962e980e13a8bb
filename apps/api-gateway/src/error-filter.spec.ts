import type { ArgumentsHost } from '@nestjs/common';
import { ERROR_OUTCOME } from '@flowruns/platform';
import { InvalidCursorError } from '@flowruns/run-views';
import { GatewayErrorFilter } from './error-filter';

describe('GatewayErrorFilter', () => {
  it('answers a cursor the query side refused with 400 naming it', () => {
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
      switchToHttp: () => ({ getRequest: () => ({ method: 'GET', url: '/api/v1/flow-runs' }), getResponse: () => res }),
    } as unknown as ArgumentsHost;
    new GatewayErrorFilter().catch(new InvalidCursorError(), host);
    expect(res.code).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field: 'cursor' } });
    // A refusal on purpose, as the idempotency guard reads it: kept for a replay, not released.
    expect(res.locals[ERROR_OUTCOME]).toBe('VALIDATION');
  });
});
