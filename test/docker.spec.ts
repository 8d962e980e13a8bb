import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
// js-yaml comes with @nestjs/swagger (a production dependency). compose.yml uses anchors and
// aliases but no merge keys (`<<`), which YAML 1.2 parsers need not resolve.
import { load } from 'js-yaml';

/**
 * docker/ cannot be built or started here (no Docker engine), so what can be checked without one
 * is: every Dockerfile lints clean and has the shape the images promise, and compose.yml wires
 * the apps to healthy infrastructure with settings the apps really read.
 */
const root = path.resolve(__dirname, '..');
const dockerDir = path.join(root, 'docker');
const APPS: Record<string, { port: number; portVar: string; hostVar: string }> = {
  'api-gateway': { port: 3000, portVar: 'GATEWAY_PORT', hostVar: 'GATEWAY_HOST' },
  'command-service': { port: 3001, portVar: 'COMMAND_SERVICE_PORT', hostVar: 'COMMAND_SERVICE_HOST' },
  projector: { port: 3002, portVar: 'PROJECTOR_PORT', hostVar: 'PROJECTOR_HOST' },
  retention: { port: 3003, portVar: 'RETENTION_PORT', hostVar: 'RETENTION_HOST' },
  'flow-worker': { port: 3004, portVar: 'FLOW_WORKER_PORT', hostVar: 'FLOW_WORKER_HOST' },
};

const envExample = new Set(
  readFileSync(path.join(root, '.env.example'), 'utf8')
    .split('\n')
    .map((l) => /^#?\s*([A-Z][A-Z0-9_]+)=/.exec(l)?.[1])
    .filter((v): v is string => Boolean(v)),
);

describe('docker/*.Dockerfile', () => {
  const dockerfiles = readdirSync(dockerDir).filter((f) => f.endsWith('.Dockerfile'));

  it('has one Dockerfile per app and no other', () => {
    expect(dockerfiles.sort()).toEqual(Object.keys(APPS).map((a) => `${a}.Dockerfile`).sort());
  });

  describe.each(Object.entries(APPS))('%s', (app, { port, portVar, hostVar }) => {
    const text = readFileSync(path.join(dockerDir, `${app}.Dockerfile`), 'utf8');
    const instructions = DockerfileParser.parse(text).getInstructions();
    const args = (keyword: string) => instructions.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? '');

    it('passes dockerfile-utils validation with no diagnostics', () => {
      expect(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    });

    it("is multi-stage: the repo's build (npm ci, npm run build), then production dependencies only", () => {
      expect(args('FROM').length).toBeGreaterThanOrEqual(3);
      const runs = args('RUN').join('\n');
      expect(runs).toMatch(/npm ci\b/);
      expect(runs).toMatch(/npm run build/);
      expect(runs).toMatch(/npm ci --omit=dev/);
      // The last stage takes node_modules from the production-only stage, and only this app's build.
      const runtime = text.slice(text.lastIndexOf('\nFROM ')).split('\n');
      expect(runtime).toContain('COPY --from=deps /app/node_modules ./node_modules');
      expect(runtime).toContain(`COPY --from=build /src/dist/apps/${app} ./dist/apps/${app}`);
      expect(runtime.filter((l) => l.startsWith('RUN'))).toEqual([]);
    });

    it('runs as a non-root user, listening on all interfaces in the container', () => {
      const users = args('USER');
      expect(users.length).toBeGreaterThan(0);
      expect(users[users.length - 1]).toBe('node');
      const lastUser = instructions.map((i) => i.getKeyword()).lastIndexOf('USER');
      expect(instructions.slice(lastUser + 1).map((i) => i.getKeyword())).not.toContain('FROM');
      expect(args('ENV').join(' ')).toContain(`${hostVar}=0.0.0.0`);
      expect(args('EXPOSE')).toEqual([String(port)]);
      expect(envExample.has(portVar) && envExample.has(hostVar)).toBe(true);
    });

    it('checks its health on /health/ready', () => {
      expect(args('HEALTHCHECK')).toEqual([expect.stringContaining(`CMD ["node", "healthcheck.js", "${portVar}", "${port}"]`)]);
      expect(args('CMD')).toEqual([`["node", "dist/apps/${app}/src/main.js"]`]);
    });
  });

  it('ships the operator CLI in the command-service image', () => {
    expect(readFileSync(path.join(dockerDir, 'command-service.Dockerfile'), 'utf8')).toContain('COPY --from=build /src/dist/apps/cli ./dist/apps/cli');
  });

  it('has a health check script that asks /health/ready', () => {
    expect(readFileSync(path.join(dockerDir, 'healthcheck.js'), 'utf8')).toContain('/health/ready');
  });
});

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

describe('docker/compose.yml', () => {
  const compose = load(readFileSync(path.join(dockerDir, 'compose.yml'), 'utf8')) as { services: Record<string, ComposeService> };
  const services = compose.services;
  const appServices = Object.keys(APPS);

  it('starts Kafka (official image, KRaft), Postgres (official image), a migrate job and every app', () => {
    expect(Object.keys(services).sort()).toEqual(['kafka', 'migrate', 'postgres', ...appServices].sort());
    expect(services.kafka.image).toMatch(/^apache\/kafka:\d/);
    expect(services.kafka.environment).toMatchObject({ KAFKA_PROCESS_ROLES: 'broker,controller', KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false' });
    expect(services.postgres.image).toMatch(/^postgres:\d/);
    for (const infra of ['kafka', 'postgres']) expect(services[infra].healthcheck?.test.length).toBeGreaterThan(0);
  });

  it('migrates and creates the topics once, after Kafka and Postgres are healthy', () => {
    const { migrate } = services;
    expect(migrate.command?.join(' ')).toMatch(/db:migrate.*topics:create/);
    expect(migrate.build?.dockerfile).toBe('docker/command-service.Dockerfile');
    expect(migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' }, kafka: { condition: 'service_healthy' } });
  });

  it.each(appServices)('%s: its own image, a health check, and waits for healthy Kafka/Postgres and the migration', (app) => {
    const s = services[app];
    expect(s.build).toEqual({ context: '..', dockerfile: `docker/${app}.Dockerfile` });
    expect(s.healthcheck?.test).toEqual(['CMD', 'node', 'healthcheck.js', APPS[app].portVar, String(APPS[app].port)]);
    expect(s.depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      kafka: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
    if (app !== 'command-service' && app !== 'projector') expect(s.depends_on?.['command-service']).toEqual({ condition: 'service_healthy' });
  });

  it('sets only settings the apps read (listed in .env.example)', () => {
    for (const name of ['migrate', ...appServices]) {
      const env = Object.keys(services[name].environment ?? {});
      expect(env.length).toBeGreaterThan(0);
      expect(env.filter((v) => !envExample.has(v))).toEqual([]);
    }
  });
});
