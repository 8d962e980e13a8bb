// Runs once before the integration, end-to-end and fault layers, and decides where Postgres and
// Kafka are, for each on its own (`plan`, pinned by test/global-setup.spec.ts):
//   1. the address in the environment (TEST_DATABASE_URL, KAFKA_BROKERS) when one is set — that is
//      what `npm test` does (scripts/lib.sh); an address that is set and does not answer is an
//      error, never silently replaced;
//   2. else, when a Docker engine answers, a testcontainers container;
//   3. else the local default (127.0.0.1:5432, 127.0.0.1:9092), which must answer.
// testcontainers is imported only once a Docker socket or DOCKER_HOST exists, so machines without
// Docker never load it. Containers are not stopped here (the jest configs have no global
// teardown): testcontainers' reaper (Ryuk) removes them when the test process exits.
const { existsSync } = require('node:fs');
const net = require('node:net');

const DEFAULTS = { postgres: 'postgres://postgres@127.0.0.1:5432/postgres', kafka: '127.0.0.1:9092' };

const reachable = (hostPort) =>
  new Promise((resolve) => {
    const i = hostPort.lastIndexOf(':');
    const s = net.connect({ host: hostPort.slice(0, i), port: Number(hostPort.slice(i + 1)), timeout: 1500 }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
    s.on('timeout', () => (s.destroy(), resolve(false)));
  });

const postgresHostPort = (url) => {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}`;
};

/** Whether a Docker engine answers, asked the way testcontainers will ask it. */
async function dockerAvailable(env = process.env) {
  if (!env.DOCKER_HOST && !existsSync('/var/run/docker.sock') && !existsSync(`${env.HOME ?? ''}/.docker/run/docker.sock`)) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/**
 * Where each service comes from: `{ postgres, kafka }`, each `{ source: 'env' | 'container' |
 * 'default', address? }`. Throws, naming the variable, when an address to be used does not answer.
 */
async function plan({ env, reachable: answers, docker }) {
  // One Docker probe at most, shared by both services.
  let dockerAnswer;
  const dockerOnce = () => (dockerAnswer ??= docker());
  const choose = async (name, variable, fallback, hostPort) => {
    const set = env[variable];
    if (set) {
      if (await answers(hostPort(set))) return { source: 'env', address: set };
      throw new Error(`test infrastructure: ${name} at ${set} (${variable}) does not answer`);
    }
    if (await dockerOnce()) return { source: 'container' };
    if (await answers(hostPort(fallback))) return { source: 'default', address: fallback };
    throw new Error(
      `test infrastructure: ${name} does not answer at ${fallback}, ${variable} is not set and no Docker engine answers. ` +
        `Run the tests with \`npm test\` (it starts the broker), or set ${variable}.`,
    );
  };
  return {
    postgres: await choose('Postgres', 'TEST_DATABASE_URL', DEFAULTS.postgres, postgresHostPort),
    kafka: await choose('Kafka', 'KAFKA_BROKERS', DEFAULTS.kafka, (b) => b.split(',')[0]),
  };
}

async function globalSetup() {
  const chosen = await plan({ env: process.env, reachable, docker: () => dockerAvailable() });
  if (chosen.postgres.source === 'container') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const pg = await new PostgreSqlContainer('postgres:15').withUsername('postgres').withPassword('postgres').start();
    process.env.TEST_DATABASE_URL = `postgres://postgres:postgres@${pg.getHost()}:${pg.getPort()}/postgres`;
  } else process.env.TEST_DATABASE_URL = chosen.postgres.address;
  if (chosen.kafka.source === 'container') {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const kafka = await new KafkaContainer('confluentinc/cp-kafka:7.6.1').withKraft().start();
    process.env.KAFKA_BROKERS = `${kafka.getHost()}:${kafka.getMappedPort(9093)}`;
  } else process.env.KAFKA_BROKERS = chosen.kafka.address;
}

module.exports = globalSetup;
module.exports.plan = plan;
module.exports.DEFAULTS = DEFAULTS;
