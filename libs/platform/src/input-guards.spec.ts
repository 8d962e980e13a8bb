import type { Request, Response } from 'express';
import { EnvelopeException } from './http-errors';
import { RouteParamsPipe, jsonBodyGuard } from './input-guards';

const NUL = String.fromCharCode(0);

/** What the middleware hands to `next`: undefined to go on, else the error. */
function guard(body: unknown, maxDepth = 8): unknown {
  let passed: unknown = 'not called';
  jsonBodyGuard({ maxDepth })({ body } as Request, {} as Response, (e?: unknown) => (passed = e));
  return passed;
}

const envelopeOf = (e: unknown) => {
  expect(e).toBeInstanceOf(EnvelopeException);
  return (e as EnvelopeException).envelope;
};

describe('jsonBodyGuard', () => {
  it('lets through no body and ordinary bodies', () => {
    expect(guard(undefined)).toBeUndefined();
    expect(guard({ a: [1, { b: 'ü' }] })).toBeUndefined();
    expect(guard('a JSON string')).toBeUndefined();
  });

  it('answers 400 VALIDATION naming the body for a body nested past the bound', () => {
    expect(envelopeOf(guard(JSON.parse('[[[[[[[[[1]]]]]]]]]')))).toEqual({
      statusCode: 400,
      code: 'VALIDATION',
      params: { field: 'body', message: 'nested deeper than 8 levels of arrays and objects' },
    });
  });

  it('answers 400 VALIDATION naming the body and the path for U+0000 in a string or a key', () => {
    expect(envelopeOf(guard({ steps: [{ name: `x${NUL}` }] })).params).toMatchObject({ field: 'body', path: 'steps.0.name' });
    expect(envelopeOf(guard({ [`k${NUL}`]: 1 })).params).toMatchObject({ field: 'body', message: expect.stringMatching(/key/) });
    expect(envelopeOf(guard(NUL)).params).toEqual({ field: 'body', message: expect.stringMatching(/U\+0000/) });
  });
});

describe('RouteParamsPipe', () => {
  const pipe = new RouteParamsPipe();
  const rejection = (value: unknown, data?: string) => {
    try {
      pipe.transform(value, { type: 'param', data });
    } catch (e) {
      return envelopeOf(e);
    }
    throw new Error('accepted');
  };

  it('passes ids through and leaves every other argument alone', () => {
    expect(pipe.transform('01a224e7-6661-7126-bdb2-6e4d4afdb51e', { type: 'param', data: 'id' })).toBe('01a224e7-6661-7126-bdb2-6e4d4afdb51e');
    expect(pipe.transform({ text: NUL }, { type: 'body' })).toEqual({ text: NUL });
    expect(pipe.transform(NUL, { type: 'query', data: 'projectId' })).toBe(NUL);
  });

  it('answers 400 VALIDATION naming the parameter for U+0000 or an id longer than 256 characters', () => {
    expect(rejection(NUL, 'id')).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field: 'id', message: expect.stringMatching(/U\+0000/) } });
    expect(rejection('%'.repeat(4544), 'runId')).toMatchObject({ statusCode: 400, params: { field: 'runId' } });
    expect(rejection({ flowId: 'f', stepName: `s${NUL}` })).toMatchObject({ params: { field: 'stepName' } });
  });
});
