import type { ArgumentsHost } from '@nestjs/common';
import { ErrorEnvelopeFilter } from './http-errors';
import { isConnectionError } from './unavailable';

/** An error shaped like MikroORM's `DriverException`: the driver error's own properties copied on. */
const driverError = (message: string, props: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { name: 'DriverException', ...props });

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });

describe('isConnectionError', () => {
  it.each([
    ['pg, a pooled connection cut under a query', driverError('select 1 - Connection terminated unexpectedly')],
    ['pg, the socket reset', driverError('select 1 - read ECONNRESET', { code: 'ECONNRESET', errno: -104 })],
    ['pg, connecting timed out', new Error('Connection terminated due to connection timeout')],
    ['pg, a client broken earlier', new Error('Client has encountered a connection error and is not queryable')],
    ['pg, writing to a closed socket', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })],
    // MikroORM rolls back after a COMMIT lost its connection; knex's answer to the ROLLBACK replaces
    // the original error. Seen in a TCP cut of a pooled connection under load (1 of 557 triggers → 500).
    ['knex, the rollback of a transaction whose connection died', driverError('Transaction query already complete, run with DEBUG=knex:tx for more info')],
    ['Postgres stopped (57P01 admin_shutdown)', pgError('57P01', 'terminating connection due to administrator command')],
    ['Postgres crashed (57P02)', pgError('57P02', 'terminating connection because of crash of another server process')],
    ['Postgres starting up (57P03)', pgError('57P03', 'the database system is starting up')],
    ['idle session timeout (57P05)', pgError('57P05', 'terminating connection due to idle-session timeout')],
    ['too many connections (53300)', pgError('53300', 'sorry, too many clients already')],
    ['connection failure (08006)', pgError('08006', 'connection failure')],
    ['protocol violation (08P01)', pgError('08P01', 'invalid frontend message type')],
    ['any other connection exception (08004)', pgError('08004', 'server rejected the connection')],
    ['the pool had no connection in time', Object.assign(new Error('Knex: Timeout acquiring a connection'), { name: 'KnexTimeoutError' })],
    ['refused, as Node reports a connect to several addresses', Object.assign(new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], ''), {})],
    ['wrapped as a cause', new Error('could not append', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) })],
  ])('%s → unavailable', (_what, error) => {
    expect(isConnectionError(error)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', pgError('23505', 'duplicate key value violates unique constraint')],
    ['a NUL character in text (22021)', pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00')],
    ['a cancelled statement (57014)', pgError('57014', 'canceling statement due to statement timeout')],
    ['a serialization failure (40001)', pgError('40001', 'could not serialize access')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a cause that is itself', (() => {
      const e = new Error('loop') as Error & { cause?: unknown };
      e.cause = e;
      return e;
    })()],
    ['nothing', undefined],
    ['a string', 'Connection terminated'],
  ])('%s → not unavailable', (_what, error) => {
    expect(isConnectionError(error)).toBe(false);
  });

  it('makes the error filter answer 503 SERVICE_UNAVAILABLE instead of 500', () => {
    process.env.LOG_LEVEL ??= 'silent';
    let status = 0;
    let body: unknown;
    const res = {
      locals: {},
      status(s: number) {
        status = s;
        return this;
      },
      json(b: unknown) {
        body = b;
        return this;
      },
    };
    const host = {
      switchToHttp: () => ({ getRequest: () => ({ method: 'POST', url: '/internal/flows/f/runs' }), getResponse: () => res }),
    } as unknown as ArgumentsHost;
    new ErrorEnvelopeFilter().catch(driverError('Transaction query already complete, run with DEBUG=knex:tx for more info'), host);
    expect({ status, body }).toEqual({
      status: 503,
      body: { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: { message: 'a dependency is unavailable; retry later' } },
    });
  });
});
