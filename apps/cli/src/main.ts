import 'reflect-metadata';
import { ApiKeyStore } from '@flowruns/access';
import { migrate, ormOptions, sqlRunner } from '@flowruns/database';
import { createKafka, ensureTopics, type Kafka } from '@flowruns/messaging';
import { DatabaseConfigSchema, KafkaConfigSchema, dlqTopicOf, loadConfig } from '@flowruns/platform';
import { RetentionClient, RetentionPassConfigSchema, retentionClientOptions, runRetentionPass } from '@flowruns/retention-runner';
import { MikroORM } from '@mikro-orm/postgresql';
import { Command, CommanderError } from 'commander';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { readDeadLetters, replayMessage } from './dead-letters';
import { prepareRebuild } from './projection-rebuild';

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

const withKafka = async <T>(work: (kafka: Kafka, cfg: ReturnType<typeof kafkaConfig>) => Promise<T>): Promise<T> => {
  const cfg = kafkaConfig();
  return work(createKafka({ brokers: cfg.KAFKA_BROKERS, clientId: `${cfg.KAFKA_CLIENT_ID}-cli` }), cfg);
};
const kafkaConfig = () => loadConfig(KafkaConfigSchema.extend({ PROJECTOR_GROUP_ID: z.string().min(1).default('flow-runs-projector') }));

program
  .command('projection:rebuild')
  .description(
    'rebuild the views from the beginning of the topic: with every projector stopped, move the projector group back to the first event ' +
      'and empty run_views/step_views/projection_stalls; the next projector start replays everything',
  )
  .option('--yes', 'confirm: the views are empty until the projector has replayed the topic')
  .action(async (opts: { yes?: boolean }) => {
    if (!opts.yes) throw new CommanderError(2, 'not-confirmed', 'add --yes: the views stay empty until a projector has replayed the topic');
    const { DATABASE_URL } = loadConfig(DatabaseConfigSchema);
    await withKafka(async (kafka, cfg) => {
      const admin = kafka.admin();
      const orm = await MikroORM.init(ormOptions({ url: DATABASE_URL, entities: [], poolMax: 1 }));
      await admin.connect();
      try {
        const { events } = await prepareRebuild({
          admin,
          groupId: cfg.PROJECTOR_GROUP_ID,
          topic: cfg.KAFKA_TOPIC,
          execute: (sql) => orm.em.fork().execute(sql),
        });
        console.log(`views emptied and group ${cfg.PROJECTOR_GROUP_ID} moved to the start of ${cfg.KAFKA_TOPIC}: start the projector to replay ${events} events`);
      } finally {
        await admin.disconnect();
        await orm.close(true);
      }
    });
  });

program
  .command('dead-letters:list')
  .description('list the messages on the dead-letter topic: where each came from, why, and the start of its value')
  .action(() =>
    withKafka(async (kafka, cfg) => {
      const letters = await readDeadLetters(kafka, dlqTopicOf(cfg));
      for (const d of letters) {
        const preview = d.value === null ? '(null)' : JSON.stringify(d.value.toString('utf8').slice(0, 120));
        console.log(`${d.partition}:${d.offset}\tfrom ${d.origin.topic}/${d.origin.partition}@${d.origin.offset} (${d.origin.consumerGroup})\tkey ${d.key ?? '-'}\t${d.reason.slice(0, 200)}\t${preview}`);
      }
      console.log(`${letters.length} dead letter(s) on ${dlqTopicOf(cfg)}`);
    }),
  );

program
  .command('dead-letters:replay')
  .description('publish dead letters back to the topic they came from (after the consumer was fixed); they stay on the dead-letter topic')
  .option('--all', 'every dead letter')
  .option('--at <partition:offset...>', 'only these dead letters (as dead-letters:list shows them)')
  .action((opts: { all?: boolean; at?: string[] }) =>
    withKafka(async (kafka, cfg) => {
      if (!opts.all && !opts.at?.length) throw new CommanderError(2, 'nothing-selected', 'give --all or --at <partition:offset>...');
      const wanted = new Set(opts.at ?? []);
      for (const at of wanted) if (!/^\d+:\d+$/.test(at)) throw new CommanderError(2, 'invalid-at', `--at: "${at}" is not partition:offset`);
      const letters = (await readDeadLetters(kafka, dlqTopicOf(cfg))).filter((d) => opts.all || wanted.has(`${d.partition}:${d.offset}`));
      const missing = [...wanted].filter((at) => !letters.some((d) => `${d.partition}:${d.offset}` === at));
      if (missing.length) throw new CommanderError(1, 'not-found', `no dead letter at ${missing.join(', ')}`);
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        const byTopic = new Map<string, ReturnType<typeof replayMessage>[]>();
        for (const d of letters) {
          const topic = d.origin.topic === '?' ? cfg.KAFKA_TOPIC : d.origin.topic;
          byTopic.set(topic, [...(byTopic.get(topic) ?? []), replayMessage(d)]);
        }
        for (const [topic, messages] of byTopic) await producer.send({ topic, acks: -1, messages });
      } finally {
        await producer.disconnect();
      }
      console.log(`replayed ${letters.length} dead letter(s)`);
    }),
  );

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    if (!e.code.startsWith('commander.')) console.error(`error: ${e.message}`);
    process.exit(e.exitCode || 1);
  }
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
