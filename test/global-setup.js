// Runs once before the integration and end-to-end layers. Tests take the broker and database
// addresses from the environment (KAFKA_BROKERS, TEST_DATABASE_URL); when they are not set and a
// Docker engine exists, testcontainers starts them instead. testcontainers is imported only then,
// so machines without Docker never load it.
const { execSync } = require('node:child_process');
const net = require('node:net');

const reachable = (hostPort) =>
  new Promise((resolve) => {
    const [host, port] = hostPort.split(':');
    const s = net.connect({ host, port: Number(port), timeout: 1500 }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
    s.on('timeout', () => (s.destroy(), resolve(false)));
  });

const hasDocker = () => {
  try {
    execSync('docker info', { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
};

module.exports = async () => {
  const broker = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0];
  const dbUrl = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const dbOk = await reachable(`${dbUrl.hostname}:${dbUrl.port || 5432}`);
  const kafkaOk = await reachable(broker);
  if (dbOk && kafkaOk) return;
  if (!hasDocker()) {
    throw new Error(
      `test infrastructure missing: Postgres ${dbOk ? 'ok' : 'unreachable'} at ${dbUrl.host}, ` +
        `Kafka ${kafkaOk ? 'ok' : 'unreachable'} at ${broker}. Run the tests with \`npm test\` ` +
        '(it starts the broker), or set TEST_DATABASE_URL / KAFKA_BROKERS.',
    );
  }
  if (!dbOk) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const pg = await new PostgreSqlContainer('postgres:15').withUsername('postgres').withPassword('postgres').start();
    process.env.TEST_DATABASE_URL = `postgres://postgres:postgres@${pg.getHost()}:${pg.getPort()}/postgres`;
    globalThis.__PG__ = pg;
  }
  if (!kafkaOk) {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const kafka = await new KafkaContainer('confluentinc/cp-kafka:7.6.1').withKraft().start();
    process.env.KAFKA_BROKERS = `${kafka.getHost()}:${kafka.getMappedPort(9093)}`;
    globalThis.__KAFKA__ = kafka;
  }
};
