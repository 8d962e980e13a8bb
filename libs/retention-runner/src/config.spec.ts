import { loadConfig } from '@flowruns/platform';
import { RetentionPassConfigSchema } from './config';

const load = (env: NodeJS.ProcessEnv) => loadConfig(RetentionPassConfigSchema, env);

describe('RetentionPassConfigSchema', () => {
  it('paces a purge by default: batches of 200, at most 1 000 runs a second, one lane, busy at most half the time', () => {
    expect(load({})).toMatchObject({
      RETENTION_BATCH_SIZE: 200,
      RETENTION_MAX_RUNS_PER_S: 1000,
      RETENTION_BATCH_PAUSE_MS: 10,
      RETENTION_CONCURRENCY: 1,
      RETENTION_MAX_BUSY_SHARE: 0.5,
    });
  });

  it('takes a busy share in (0, 1] and refuses anything else, naming the setting', () => {
    expect(load({ RETENTION_MAX_BUSY_SHARE: '1' }).RETENTION_MAX_BUSY_SHARE).toBe(1);
    expect(load({ RETENTION_MAX_BUSY_SHARE: '0.25' }).RETENTION_MAX_BUSY_SHARE).toBe(0.25);
    for (const value of ['0', '-0.5', '1.5', 'half']) expect(() => load({ RETENTION_MAX_BUSY_SHARE: value })).toThrow(/RETENTION_MAX_BUSY_SHARE/);
  });

  it('takes 0 as no cap, and a cap from the environment', () => {
    expect(load({ RETENTION_MAX_RUNS_PER_S: '0' }).RETENTION_MAX_RUNS_PER_S).toBe(0);
    expect(load({ RETENTION_MAX_RUNS_PER_S: '5000' }).RETENTION_MAX_RUNS_PER_S).toBe(5000);
  });

  it.each(['-1', '1.5', 'fast'])('refuses RETENTION_MAX_RUNS_PER_S=%s, naming the setting', (value) => {
    expect(() => load({ RETENTION_MAX_RUNS_PER_S: value })).toThrow(/RETENTION_MAX_RUNS_PER_S/);
  });
});
