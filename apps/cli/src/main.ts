import 'reflect-metadata';
import { ApiKeyStore } from '@flowruns/access';
import { migrate, ormOptions, sqlRunner } from '@flowruns/database';
import { createKafka, ensureTopics } from '@flowruns/messaging';
import { DatabaseConfigSchema, KafkaConfigSchema, dlqTopicOf, loadConfig } from '@flowruns/platform';
import { RetentionClient, RetentionPassConfigSchema, retentionClientOptions, runRetentionPass } from '@flowruns/retention-runner';
import { MikroORM } from '@mikro-orm/postgresql';
import { Command, CommanderError } from 'commander';
import { v7 as uuidv7 } from 'uuid';

/** The operator CLI: `npm run cli -- <command>`. Output meant for scripts goes last, on its own line. */
const program = new Command('flow-runs')
  .description('Flow Runs operator CLI')
  .exitOverride()
  .showHelpAfterError();

const withKeys = async <T>(work: (keys: ApiKeyStore) => Promise<T>): Promise<T> => {
  const { DATABASE_URL } = loadConfig(DatabaseConfigSchema);
  const orm = await MikroORM.init(ormOptions({ url: DATABASE_URL, entities: [], poolMax: 1 }));
  try {
    return await work(new ApiKeyStore(sqlRunner(orm.em.fork())));
  } finally {
    await orm.close(true);
  }
};

program
  .command('db:migrate')
  .description('create the database if missing and apply pending migrations')
  .action(async () => {
    const { DATABASE_URL } = loadConfig(DatabaseConfigSchema);
    const applied = await migrate(DATABASE_URL);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  });

program
  .command('topics:create')
  .description('create the run-events topic and its dead-letter topic if missing')
  .action(async () => {
    const cfg = loadConfig(KafkaConfigSchema);
    const admin = createKafka({ brokers: cfg.KAFKA_BROKERS, clientId: `${cfg.KAFKA_CLIENT_ID}-cli` }).admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [
        { topic: cfg.KAFKA_TOPIC, numPartitions: cfg.KAFKA_TOPIC_PARTITIONS },
        { topic: dlqTopicOf(cfg), numPartitions: 1 },
      ]);
      console.log(`topics ready: ${cfg.KAFKA_TOPIC}, ${dlqTopicOf(cfg)}`);
    } finally {
      await admin.disconnect();
    }
  });

program
  .command('api-keys:create')
  .description('create an API key for a project; the key is printed once, as the last line')
  .requiredOption('--project <projectId>', 'the project the key belongs to')
  .action(async (opts: { project: string }) => {
    const project = opts.project.trim();
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(project)) {
      throw new CommanderError(2, 'invalid-project', `--project: "${opts.project}" must be 1-128 of [A-Za-z0-9_-]`);
    }
    const created = await withKeys((keys) => keys.create(project, `key_${uuidv7()}`));
    console.log(`Created API key ${created.id} for project ${project}. Store it now: it is not shown again.`);
    console.log(created.key);
  });

program
  .command('api-keys:list')
  .description("list a project's API keys (prefixes only)")
  .requiredOption('--project <projectId>', 'the project')
  .action(async (opts: { project: string }) => {
    const rows = await withKeys((keys) => keys.list(opts.project));
    for (const r of rows) {
      console.log(`${r.id}\t${r.prefix}…\tcreated ${r.createdAt.toISOString()}\t${r.revokedAt ? `revoked ${r.revokedAt.toISOString()}` : 'active'}`);
    }
    if (rows.length === 0) console.log(`no keys for project ${opts.project}`);
  });

program
  .command('api-keys:revoke')
  .description('revoke an API key by id')
  .argument('<keyId>', 'the key id (key_...)')
  .action(async (keyId: string) => {
    const revoked = await withKeys((keys) => keys.revoke(keyId));
    if (!revoked) throw new CommanderError(1, 'not-found', `no active key ${keyId}`);
    console.log(`revoked ${keyId}`);
  });

/**
 * `--retention-days` / `--monthly-run-quota`: a positive integer, or `none` to remove the setting
 * (kept as the string: commander turns a parser's null into '').
 */
const limitOption = (name: string) => (value: string): number | 'none' => {
  if (value === 'none') return 'none';
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1_000_000_000) {
    throw new CommanderError(2, 'invalid-option', `${name}: "${value}" must be a positive integer or "none"`);
  }
  return Number(value);
};

program
  .command('projects:set')
  .description("set a project's own limits: its execution-data retention window and its monthly run quota")
  .argument('<projectId>', 'the project')
  .option('--retention-days <days|none>', 'days a finished run keeps its execution data (none: AP_EXECUTION_DATA_RETENTION_DAYS)', limitOption('--retention-days'))
  .option('--monthly-run-quota <runs|none>', 'runs the project may start per calendar month, UTC (none: unlimited)', limitOption('--monthly-run-quota'))
  .action(async (projectId: string, opts: { retentionDays?: number | 'none'; monthlyRunQuota?: number | 'none' }) => {
    const value = (v: number | 'none' | undefined) => (typeof v === 'number' ? v : null);
    if (opts.retentionDays === undefined && opts.monthlyRunQuota === undefined) {
      throw new CommanderError(2, 'nothing-to-set', 'give --retention-days and/or --monthly-run-quota');
    }
    const { DATABASE_URL } = loadConfig(DatabaseConfigSchema);
    const orm = await MikroORM.init(ormOptions({ url: DATABASE_URL, entities: [], poolMax: 1 }));
    try {
      const [row] = await orm.em.fork().execute<{ id: string; retention_days: number | null; monthly_run_quota: number | null }[]>(
        `insert into projects (id, retention_days, monthly_run_quota) values (?, ?, ?)
         on conflict (id) do update set
           retention_days = case when ? then excluded.retention_days else projects.retention_days end,
           monthly_run_quota = case when ? then excluded.monthly_run_quota else projects.monthly_run_quota end
         returning id, retention_days, monthly_run_quota`,
        [projectId, value(opts.retentionDays), value(opts.monthlyRunQuota), opts.retentionDays !== undefined, opts.monthlyRunQuota !== undefined],
      );
      console.log(`project ${row.id}: retention ${row.retention_days ?? 'default'} days, monthly run quota ${row.monthly_run_quota ?? 'unlimited'}`);
    } finally {
      await orm.close(true);
    }
  });

program
  .command('retention:run')
  .description(
    'purge the execution data that has expired (through the command service), or with --dry-run only count it; ' +
      'reads AP_EXECUTION_DATA_RETENTION_DAYS, RETENTION_BATCH_SIZE, RETENTION_BATCH_PAUSE_MS, COMMAND_SERVICE_URL, INTERNAL_API_TOKEN',
  )
  .option('--dry-run', 'count what would be purged; change nothing')
  .option('--now <iso>', 'evaluate the windows at this instant instead of now (ISO 8601 with a zone)')
  .action(async (opts: { dryRun?: boolean; now?: string }) => {
    const now = opts.now === undefined ? new Date() : new Date(opts.now);
    if (opts.now !== undefined && (!/(Z|[+-]\d{2}:\d{2})$/.test(opts.now) || Number.isNaN(now.getTime()))) {
      throw new CommanderError(2, 'invalid-now', `--now: "${opts.now}" is not an ISO 8601 time with a zone (e.g. 2031-01-01T00:00:00Z)`);
    }
    const cfg = loadConfig(RetentionPassConfigSchema);
    const client = new RetentionClient(retentionClientOptions(cfg));
    const window = { now, defaultDays: cfg.AP_EXECUTION_DATA_RETENTION_DAYS };
    if (opts.dryRun) {
      const plan = await client.plan(window);
      console.log(`dry run at ${now.toISOString()} (default window ${window.defaultDays} days): ${plan.runs} runs, ${plan.bytes} bytes would be purged`);
      return;
    }
    const r = await runRetentionPass(client, { window, batchSize: cfg.RETENTION_BATCH_SIZE, pauseMs: cfg.RETENTION_BATCH_PAUSE_MS });
    console.log(`purged at ${now.toISOString()} (default window ${window.defaultDays} days): ${r.runs} runs, ${r.records} records, ${r.bytes} bytes in ${r.batches} batches`);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    if (!e.code.startsWith('commander.')) console.error(`error: ${e.message}`);
    process.exit(e.exitCode || 1);
  }
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
