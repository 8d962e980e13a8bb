import 'reflect-metadata';
import { ApiKeyStore } from '@flowruns/access';
import { migrate, ormOptions, sqlRunner } from '@flowruns/database';
import { createKafka, ensureTopics, javaCompatiblePartitioner, type Kafka } from '@flowruns/messaging';
import { CommandServiceError, CommandServiceUnavailable, DatabaseConfigSchema, KafkaConfigSchema, dlqTopicOf, loadConfig } from '@flowruns/platform';
import { RetentionClient, RetentionPassConfigSchema, retentionClientOptions, runRetentionPass, type RetentionPassConfig } from '@flowruns/retention-runner';
import { MikroORM } from '@mikro-orm/postgresql';
import { Command, CommanderError } from 'commander';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { readDeadLetters, replayMessage } from './dead-letters';
import { prepareRebuild } from './projection-rebuild';
import { listStalls, stallsTable } from './projection-stalls';

// The CLI logs (kafkajs retries, MikroORM) only from errors up unless LOG_LEVEL says otherwise:
// its own output is what the operator reads.
process.env.LOG_LEVEL ??= 'error';

/** Exit codes, documented in apps/cli/README.md. */
const EXIT = { ok: 0, failure: 1, usage: 2, config: 3 } as const;

/** A mistake in the command line: exit 2, the message and the command's usage on stderr. */
const usageError = (code: string, message: string) => new CommanderError(EXIT.usage, code, message);
/** The operation could not be done (refused, not found, a dependency unreachable): exit 1. */
const failure = (code: string, message: string) => new CommanderError(EXIT.failure, code, message);

/** The settings, or exit 3 with the variables that are wrong. */
const config = <S extends Parameters<typeof loadConfig>[0]>(schema: S): ReturnType<typeof loadConfig<S>> => {
  try {
    return loadConfig(schema);
  } catch (e) {
    throw new CommanderError(EXIT.config, 'invalid-config', (e as Error).message);
  }
};

const UNREACHABLE = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|Connection error|connect timeout|Connection timeout/i;
const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

/** Runs `work`; when it fails because `what` cannot be reached, says so and which setting names it. */
async function reaching<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof CommanderError) throw e;
    const message = (e as Error)?.message ?? String(e);
    if (e instanceof CommandServiceUnavailable || UNREACHABLE.test(message)) throw failure('unreachable', `cannot reach ${what}: ${message}`);
    throw e;
  }
}

/** The operator CLI: `npm run cli -- <command>`. Output meant for scripts goes last, on its own line. */
const program = new Command('flow-runs')
  .description('Flow Runs operator CLI. Exit codes: 0 ok, 1 failure, 2 usage error, 3 invalid configuration.')
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

const withOrm = async <T>(work: (orm: MikroORM) => Promise<T>): Promise<T> => {
  const { DATABASE_URL } = config(DatabaseConfigSchema);
  const orm = await reaching(`Postgres at ${redact(DATABASE_URL)} (DATABASE_URL)`, () =>
    MikroORM.init(ormOptions({ url: DATABASE_URL, entities: [], poolMax: 1 })),
  );
  try {
    return await work(orm);
  } catch (e) {
    const message = (e as Error)?.message ?? '';
    const missing = /relation "([^"]+)" does not exist/.exec(message);
    if (missing) throw failure('not-migrated', `the database has no table ${missing[1]}: run db:migrate first (npm run migrate)`);
    // A table that a later migration gave a column (projection_stalls.reason, for one).
    const column = /column "?([\w.]+)"? does not exist/.exec(message);
    if (column) throw failure('not-migrated', `the database has no column ${column[1]}: run db:migrate first (npm run migrate)`);
    throw e;
  } finally {
    await orm.close(true);
  }
};

const withKeys = <T>(work: (keys: ApiKeyStore) => Promise<T>): Promise<T> => withOrm((orm) => work(new ApiKeyStore(sqlRunner(orm.em.fork()))));

program
  .command('db:migrate')
  .description('create the database if missing and apply pending migrations')
  .action(async () => {
    const { DATABASE_URL } = config(DatabaseConfigSchema);
    const applied = await reaching(`Postgres at ${redact(DATABASE_URL)} (DATABASE_URL)`, () => migrate(DATABASE_URL));
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  });

program
  .command('topics:create')
  .description('create the run-events topic and its dead-letter topic if missing')
  .action(() =>
    withKafka(async (kafka, cfg) => {
      const admin = kafka.admin();
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
    }),
  );

program
  .command('api-keys:create')
  .description('create an API key for a project; the key is printed once, as the last line')
  .requiredOption('--project <projectId>', 'the project the key belongs to')
  .action(async (opts: { project: string }) => {
    const project = opts.project.trim();
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(project)) {
      throw usageError('invalid-project', `--project: "${opts.project}" must be 1-128 of [A-Za-z0-9_-]`);
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
    if (!revoked) throw failure('not-found', `no active key ${keyId}`);
    console.log(`revoked ${keyId}`);
  });

/** `value` as an integer from 1 to `max`, or null. */
const intUpTo = (value: string, max: number): number | null => (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= max ? Number(value) : null);

/**
 * `--retention-days` / `--monthly-run-quota`: a positive integer, or `none` to remove the setting
 * (kept as the string: commander turns a parser's null into '').
 */
const limitOption = (name: string) => (value: string): number | 'none' => {
  if (value === 'none') return 'none';
  const n = intUpTo(value, 1_000_000_000);
  if (n === null) {
    throw usageError('invalid-option', `${name}: "${value}" must be a positive integer or "none"`);
  }
  return n;
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
      throw usageError('nothing-to-set', 'give --retention-days and/or --monthly-run-quota');
    }
    await withOrm(async (orm) => {
      const [row] = await orm.em.fork().execute<ProjectRow[]>(
        `insert into projects (id, retention_days, monthly_run_quota) values (?, ?, ?)
         on conflict (id) do update set
           retention_days = case when ? then excluded.retention_days else projects.retention_days end,
           monthly_run_quota = case when ? then excluded.monthly_run_quota else projects.monthly_run_quota end
         returning id, retention_days, monthly_run_quota`,
        [projectId, value(opts.retentionDays), value(opts.monthlyRunQuota), opts.retentionDays !== undefined, opts.monthlyRunQuota !== undefined],
      );
      console.log(describeProject(row));
    });
  });

type ProjectRow = { id: string; retention_days: number | null; monthly_run_quota: number | null };
const describeProject = (row: ProjectRow) =>
  `project ${row.id}: retention ${row.retention_days ?? 'default'} days, monthly run quota ${row.monthly_run_quota ?? 'unlimited'}`;

program
  .command('projects:list')
  .description('list the projects that have their own limits (retention window, monthly run quota)')
  .option('--project <projectId>', 'only this project')
  .action((opts: { project?: string }) =>
    withOrm(async (orm) => {
      const rows = await orm.em
        .fork()
        .execute<ProjectRow[]>(
          `select id, retention_days, monthly_run_quota from projects where (?::text is null or id = ?) order by id`,
          [opts.project ?? null, opts.project ?? null],
        );
      for (const row of rows) console.log(describeProject(row));
      if (opts.project !== undefined && rows.length === 0) throw failure('not-found', `no project ${opts.project} (it has only the defaults)`);
      if (rows.length === 0) console.log('no project has its own limits');
    }),
  );

/** `--now`: an ISO 8601 instant with a zone, default now. */
const parseNow = (raw: string | undefined): Date => {
  if (raw === undefined) return new Date();
  const now = new Date(raw);
  if (!/(Z|[+-]\d{2}:\d{2})$/.test(raw) || Number.isNaN(now.getTime())) {
    throw usageError('invalid-now', `--now: "${raw}" is not an ISO 8601 time with a zone (e.g. 2031-01-01T00:00:00Z)`);
  }
  return now;
};

/** The command service's retention endpoints, with its address and token from the environment. */
const withRetention = async <T>(work: (client: RetentionClient, cfg: RetentionPassConfig) => Promise<T>): Promise<T> => {
  const cfg = config(RetentionPassConfigSchema);
  try {
    return await reaching(`the command service at ${cfg.COMMAND_SERVICE_URL} (COMMAND_SERVICE_URL)`, () => work(new RetentionClient(retentionClientOptions(cfg)), cfg));
  } catch (e) {
    if (e instanceof CommandServiceError && (e.status === 401 || e.status === 403)) {
      throw failure('unauthorized', `the command service refused the internal token (INTERNAL_API_TOKEN): ${e.message}`);
    }
    throw e;
  }
};

const printPlan = (now: Date, defaultDays: number, plan: { runs: number; bytes: number }, json: boolean | undefined, prefix: string) =>
  console.log(
    json
      ? JSON.stringify({ now: now.toISOString(), defaultDays, runs: plan.runs, bytes: plan.bytes })
      : `${prefix} at ${now.toISOString()} (default window ${defaultDays} days): ${plan.runs} runs, ${plan.bytes} bytes would be purged`,
  );

const RETENTION_READS = 'reads COMMAND_SERVICE_URL, INTERNAL_API_TOKEN, AP_EXECUTION_DATA_RETENTION_DAYS';

program
  .command('retention:plan')
  .description(`count the finished runs whose execution data has expired (each project's window, else the default) and its bytes; changes nothing; ${RETENTION_READS}`)
  .option('--now <iso>', 'evaluate the windows at this instant instead of now (ISO 8601 with a zone)')
  .option('--json', 'print the plan as one JSON object: {now, defaultDays, runs, bytes}')
  .action((opts: { now?: string; json?: boolean }) => {
    const now = parseNow(opts.now);
    return withRetention(async (client, cfg) => {
      const window = { now, defaultDays: cfg.AP_EXECUTION_DATA_RETENTION_DAYS };
      printPlan(now, window.defaultDays, await client.plan(window), opts.json, 'plan');
    });
  });

program
  .command('retention:run')
  .description(
    `purge the execution data that has expired (through the command service), batch by batch; with --dry-run only count it (as retention:plan); ${RETENTION_READS}, RETENTION_BATCH_SIZE, RETENTION_BATCH_PAUSE_MS, RETENTION_CONCURRENCY, RETENTION_MAX_RUNS_PER_S, RETENTION_MAX_BUSY_SHARE`,
  )
  .option('--dry-run', 'count what would be purged; change nothing')
  .option('--now <iso>', 'evaluate the windows at this instant instead of now (ISO 8601 with a zone)')
  .action((opts: { dryRun?: boolean; now?: string }) => {
    const now = parseNow(opts.now);
    return withRetention(async (client, cfg) => {
      const window = { now, defaultDays: cfg.AP_EXECUTION_DATA_RETENTION_DAYS };
      if (opts.dryRun) {
        printPlan(now, window.defaultDays, await client.plan(window), false, 'dry run');
        return;
      }
      const r = await runRetentionPass(client, { window, batchSize: cfg.RETENTION_BATCH_SIZE, pauseMs: cfg.RETENTION_BATCH_PAUSE_MS, concurrency: cfg.RETENTION_CONCURRENCY, maxRunsPerS: cfg.RETENTION_MAX_RUNS_PER_S, maxBusyShare: cfg.RETENTION_MAX_BUSY_SHARE });
      console.log(`purged at ${now.toISOString()} (default window ${window.defaultDays} days): ${r.runs} runs, ${r.records} records, ${r.bytes} bytes in ${r.batches} batches`);
    });
  });

const withKafka = async <T>(work: (kafka: Kafka, cfg: ReturnType<typeof kafkaConfig>) => Promise<T>): Promise<T> => {
  const cfg = kafkaConfig();
  return reaching(`Kafka at ${cfg.KAFKA_BROKERS.join(',')} (KAFKA_BROKERS)`, () =>
    work(createKafka({ brokers: cfg.KAFKA_BROKERS, clientId: `${cfg.KAFKA_CLIENT_ID}-cli` }), cfg),
  );
};
const kafkaConfig = () => config(KafkaConfigSchema.extend({ PROJECTOR_GROUP_ID: z.string().min(1).default('flow-runs-projector') }));

program
  .command('projection:rebuild')
  .description(
    'rebuild the views from the beginning of the topic: with every projector stopped, move the projector group back to the first event ' +
      'and empty run_views/step_views/projection_stalls; the next projector start replays everything',
  )
  .option('--yes', 'confirm: the views are empty until the projector has replayed the topic')
  .action(async (opts: { yes?: boolean }) => {
    if (!opts.yes) throw usageError('not-confirmed', 'add --yes: the views stay empty until a projector has replayed the topic');
    await withOrm((orm) =>
      withKafka(async (kafka, cfg) => {
        const admin = kafka.admin();
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
        }
      }),
    );
  });

/** `--limit`: an integer from 1 to `max`. */
const countOption = (name: string, max: number) => (value: string): number => {
  const n = intUpTo(value, max);
  if (n === null) throw usageError('invalid-option', `${name}: "${value}" must be an integer from 1 to ${max}`);
  return n;
};

program
  .command('projection:stalls')
  .description(
    'list the runs whose projection stalled (their views stopped until a rebuild), newest first: run, project, reason ' +
      '(gap, not-created, already-created), the event it stalled on, expected and received seq, when',
  )
  .option('--limit <n>', 'at most this many, the newest (1-10000)', countOption('--limit', 10_000), 50)
  .option('--json', 'one JSON object per stall and line: {runId, projectId, reason, eventType, expectedSeq, receivedSeq, eventId, detectedAt}')
  .action((opts: { limit: number; json?: boolean }) =>
    withOrm(async (orm) => {
      const { stalls, total } = await listStalls(sqlRunner(orm.em.fork()), opts.limit);
      if (opts.json) {
        for (const s of stalls) console.log(JSON.stringify(s));
        return;
      }
      if (total === 0) {
        console.log('no stalled runs');
        return;
      }
      for (const line of stallsTable(stalls)) console.log(line);
      console.log(stalls.length < total ? `the newest ${stalls.length} of ${total} stalled run(s) (--limit)` : `${total} stalled run(s)`);
    }),
  );

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
  .action((opts: { all?: boolean; at?: string[] }) => {
    if (!opts.all && !opts.at?.length) throw usageError('nothing-selected', 'give --all or --at <partition:offset>...');
    if (opts.all && opts.at?.length) throw usageError('both-selected', 'give --all or --at, not both');
    for (const at of opts.at ?? []) if (!/^\d+:\d+$/.test(at)) throw usageError('invalid-at', `--at: "${at}" is not partition:offset`);
    return withKafka(async (kafka, cfg) => {
      const wanted = new Set(opts.at ?? []);
      const letters = (await readDeadLetters(kafka, dlqTopicOf(cfg))).filter((d) => opts.all || wanted.has(`${d.partition}:${d.offset}`));
      const missing = [...wanted].filter((at) => !letters.some((d) => `${d.partition}:${d.offset}` === at));
      if (missing.length) throw failure('not-found', `no dead letter at ${missing.join(', ')}`);
      // The relay's partitioner: a replayed event goes to its run's partition.
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: javaCompatiblePartitioner });
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
    });
  });

/**
 * Every outcome becomes an exit code and at most one `error: …` line on stderr: commander's own
 * usage errors (it printed the message and the usage already) exit 2, ours carry their code, and
 * anything unexpected exits 1 with its message only (no stack trace).
 */
program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(EXIT.ok);
    // `help [command]` exits 0; no command at all shows the help on stderr: a usage error.
    if (e.code === 'commander.help') process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage);
    if (e.code.startsWith('commander.')) process.exit(EXIT.usage);
    console.error(`error: ${e.message}`);
    if (e.exitCode === EXIT.usage) console.error('(add --help for usage)');
    process.exit(e.exitCode || EXIT.failure);
  }
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(EXIT.failure);
});
