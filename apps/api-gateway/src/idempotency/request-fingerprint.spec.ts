import { EnvelopeException } from '@flowruns/platform';
import { canonicalJson, parseIdempotencyKey, requestFingerprint } from './request-fingerprint';

describe('parseIdempotencyKey', () => {
  it('is null without the header', () => {
    expect(parseIdempotencyKey(undefined)).toBeNull();
  });

  it.each([['a'], ['order-2024-01-15:7 #retry'], ['~'.repeat(255)], [' !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~']])('accepts %j', (key) => {
    expect(parseIdempotencyKey(key)).toBe(key);
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a control character', 'a\tb'],
    ['non-ASCII', 'clé'],
    ['several values', ['a', 'b']],
  ])('refuses %s with 400 VALIDATION naming the header', (_what, key) => {
    let thrown: unknown;
    try {
      parseIdempotencyKey(key);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(EnvelopeException);
    expect((thrown as EnvelopeException).envelope).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field: 'Idempotency-Key' } });
  });
});

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('tells no body from an empty object, and serialises scalars', () => {
    expect(canonicalJson(undefined)).toBe('');
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson('x')).toBe('"x"');
    expect(canonicalJson(7)).toBe('7');
  });
});

describe('requestFingerprint', () => {
  const fp = (method: string, path: string, body: unknown) => requestFingerprint(method, path, body).toString('hex');

  it('is the same for the same request whatever the key order', () => {
    expect(fp('POST', '/api/v1/flows', { a: 1, b: 2 })).toBe(fp('post', '/api/v1/flows', { b: 2, a: 1 }));
  });

  it('differs when the method, the path or the body differs', () => {
    const base = fp('POST', '/api/v1/flows', { a: 1 });
    expect(fp('PUT', '/api/v1/flows', { a: 1 })).not.toBe(base);
    expect(fp('POST', '/api/v1/flows/x', { a: 1 })).not.toBe(base);
    expect(fp('POST', '/api/v1/flows', { a: 2 })).not.toBe(base);
    expect(fp('POST', '/api/v1/flows', undefined)).not.toBe(fp('POST', '/api/v1/flows', {}));
  });

  it('cannot be forged by moving text between the path and the body', () => {
    expect(fp('POST', '/a\n1', 2)).not.toBe(fp('POST', '/a', '1\n2'));
  });
});
