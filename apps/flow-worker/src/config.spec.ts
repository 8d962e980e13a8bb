import { checkDestination } from '@flowruns/engine';
import { loadFlowWorkerConfig } from './config';

describe('flow-worker config: FLOW_WORKER_HTTP_ALLOW_PRIVATE', () => {
  it('allows no blocked destination by default (the SSRF guard is on)', () => {
    const allow = loadFlowWorkerConfig({}).FLOW_WORKER_HTTP_ALLOW_PRIVATE;
    expect(allow.any).toBe(false);
    expect(allow.entries).toEqual([]);
    expect(checkDestination(allow, '127.0.0.1', '127.0.0.1')?.message).toBe('destination 127.0.0.1 is not allowed (loopback address)');
  });

  it('reads addresses, ranges and host names', () => {
    const allow = loadFlowWorkerConfig({ FLOW_WORKER_HTTP_ALLOW_PRIVATE: '127.0.0.1/32, 10.20.0.0/16,api.internal' }).FLOW_WORKER_HTTP_ALLOW_PRIVATE;
    expect(allow.entries).toEqual(['127.0.0.1/32', '10.20.0.0/16', 'api.internal']);
    expect(checkDestination(allow, '127.0.0.1', '127.0.0.1')).toBeUndefined();
    expect(checkDestination(allow, 'x', '10.20.3.4')).toBeUndefined();
    expect(checkDestination(allow, 'api.internal', '10.99.0.1')).toBeUndefined();
    expect(checkDestination(allow, '10.21.0.1', '10.21.0.1')?.reason).toBe('private');
  });

  it.each(['*', 'true'])('turns the guard off with %s', (value) => {
    expect(loadFlowWorkerConfig({ FLOW_WORKER_HTTP_ALLOW_PRIVATE: value }).FLOW_WORKER_HTTP_ALLOW_PRIVATE.any).toBe(true);
  });

  it('fails fast naming the variable and the entry that is not an address, range or name', () => {
    expect(() => loadFlowWorkerConfig({ FLOW_WORKER_HTTP_ALLOW_PRIVATE: '127.0.0.1,10.0.0.0/40' })).toThrow(
      /^Invalid configuration:\n\s+FLOW_WORKER_HTTP_ALLOW_PRIVATE: "10\.0\.0\.0\/40" is not an IP address/,
    );
  });
});
