// The decision test/global-setup.js makes before the int, e2e and fault layers: where Postgres and
// Kafka come from. The probes are stand-ins (no engine or server is asked); what runs for real is
// pinned by every int/e2e run, which takes the addresses from the environment here.
const { plan, DEFAULTS } = require('./global-setup') as {
  plan: (deps: { env: Record<string, string | undefined>; reachable: (hostPort: string) => Promise<boolean>; docker: () => Promise<boolean> }) => Promise<{
    postgres: { source: string; address?: string };
    kafka: { source: string; address?: string };
  }>;
  DEFAULTS: { postgres: string; kafka: string };
};

const PG = 'postgres://postgres@db.test:6543/postgres';
const BROKERS = 'kafka.test:19092,kafka2.test:19092';

/** Probes that answer for the given host:ports only, and count the Docker probes. */
const world = (up: string[], docker: boolean) => {
  const asked = { docker: 0, hosts: [] as string[] };
  return {
    asked,
    reachable: async (hostPort: string) => (asked.hosts.push(hostPort), up.includes(hostPort)),
    docker: async () => (asked.docker++, docker),
  };
};

describe('where the tests find Postgres and Kafka (test/global-setup.js)', () => {
  it('takes the addresses from the environment when they are set, even with a Docker engine', async () => {
    const w = world(['db.test:6543', 'kafka.test:19092'], true);
    expect(await plan({ env: { TEST_DATABASE_URL: PG, KAFKA_BROKERS: BROKERS }, ...w })).toEqual({
      postgres: { source: 'env', address: PG },
      kafka: { source: 'env', address: BROKERS },
    });
    expect(w.asked.docker).toBe(0);
  });

  it('starts testcontainers for what the environment does not name when a Docker engine answers, asking Docker once', async () => {
    const w = world(['127.0.0.1:5432', '127.0.0.1:9092'], true);
    expect(await plan({ env: {}, ...w })).toEqual({ postgres: { source: 'container' }, kafka: { source: 'container' } });
    expect(w.asked.docker).toBe(1);
    // Only Kafka unnamed: Postgres from the environment, Kafka in a container.
    expect(await plan({ env: { TEST_DATABASE_URL: PG }, ...world(['db.test:6543'], true) })).toEqual({
      postgres: { source: 'env', address: PG },
      kafka: { source: 'container' },
    });
  });

  it('without Docker, uses the local defaults when they answer', async () => {
    const w = world(['127.0.0.1:5432', '127.0.0.1:9092'], false);
    expect(await plan({ env: {}, ...w })).toEqual({
      postgres: { source: 'default', address: DEFAULTS.postgres },
      kafka: { source: 'default', address: DEFAULTS.kafka },
    });
  });

  it('fails, naming the variable, when a set address does not answer (never replaced by a container)', async () => {
    const w = world(['db.test:6543'], true);
    await expect(plan({ env: { TEST_DATABASE_URL: PG, KAFKA_BROKERS: BROKERS }, ...w })).rejects.toThrow(
      'test infrastructure: Kafka at kafka.test:19092,kafka2.test:19092 (KAFKA_BROKERS) does not answer',
    );
    expect(w.asked.docker).toBe(0);
  });

  it('fails with what to do when nothing is set, nothing answers locally and there is no Docker', async () => {
    await expect(plan({ env: {}, ...world([], false) })).rejects.toThrow(/Postgres does not answer at .*TEST_DATABASE_URL is not set and no Docker engine answers.*npm test/);
  });
});
