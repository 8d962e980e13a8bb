import { requestLogFields } from './bootstrap';
import { traceIdOf } from './tracing';

describe('ids as log fields', () => {
  it.each([
    ['the command service', { runId: 'r1', stepName: 's' }, '/internal/runs/:runId/steps/:stepName/start', { runId: 'r1' }],
    ['the gateway', { id: 'r2' }, '/api/v1/flow-runs/:id/retry', { runId: 'r2' }],
    ['a flow (not a run)', { flowId: 'f1' }, '/api/v1/flows/:flowId/run', {}],
    ['an :id that is not a run', { id: 'x' }, '/api/v1/other/:id', {}],
  ])('names the run of a request on %s', (_where, params, path, fields) => {
    expect(requestLogFields({ params, route: { path } })).toEqual(fields);
  });

  it('names nothing before routing (no params, no route)', () => {
    expect(requestLogFields({})).toEqual({});
  });

  it('reads the trace id from a traceparent, and nothing from a malformed or all-zero one', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('00-4bf92f3577b34da6-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });
});
