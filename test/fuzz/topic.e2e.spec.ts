import fc from 'fast-check';
import { parseEnvelope } from '@flowruns/contracts';
import { uniqueName, waitFor } from '@flowruns/testing';
import { deadLetterCount, FaultSystem, publishRaw, readiness, recordFigures } from '../faults/kit';

/**
 * Hostile messages on the run-event topic, property-based: random bytes, random JSON, envelopes
 * with fields broken one by one, known types with data that breaks their schema, types no consumer
 * knows. None may stop a consumer: the projector dead-letters exactly the unparseable ones and goes
 * on, the flow worker skips them, and a run triggered afterwards is executed and projected as usual.
 * Well-formed events of known types are left out on purpose: the topic is written by the command
 * service only, and a valid forged event is not malformed input.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);
const MESSAGES = Number(process.env.FUZZ_TOPIC_MESSAGES ?? 300);

const TYPES = ['flowrun.triggered.v1', 'flowrun.step.started.v1', 'flowrun.step.succeeded.v1', 'flowrun.succeeded.v1', 'flowrun.retried.v1', 'flowrun.x.v1', 'FLOWRUN.TRIGGERED.V1', ''];

describe('fuzzing the topic (fast-check): malformed or unknown events never stop a consumer', () => {
  let sys: FaultSystem;

  beforeAll(async () => {
    sys = await FaultSystem.start({ workers: 1 });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it(`${MESSAGES} generated messages: the invalid ones are dead-lettered, the rest skipped, and runs go on`, async () => {
    /** Mostly the valid value, sometimes anything: so most envelopes break in one field or none. */
    const mostly = <T>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: other, weight: 1 });
    const envelope = fc.record({
      specversion: mostly(fc.constant('1.0'), fc.jsonValue()),
      id: mostly(fc.constant(`evt_${uniqueName('f')}`), fc.jsonValue()),
      type: fc.oneof(fc.constantFrom(...TYPES), fc.string({ minLength: 1 }).map((t) => `flowrun.${t}.v9`), fc.jsonValue()),
      source: mostly(fc.constant('fuzz'), fc.jsonValue()),
      time: mostly(fc.constant(new Date().toISOString()), fc.oneof(fc.string(), fc.jsonValue())),
      // Never one of the system's runs: what a fuzzed message may touch is a run that does not exist.
      subject: mostly(fc.string({ minLength: 1 }).map((s) => `run_fuzz_${s}`), fc.jsonValue()),
      projectId: mostly(fc.constant(sys.projectId), fc.jsonValue()),
      flowId: mostly(fc.constant(sys.flowId), fc.jsonValue()),
      seq: mostly(fc.integer({ min: 1, max: 5 }), fc.oneof(fc.integer({ min: -5, max: 0 }), fc.double(), fc.jsonValue())),
      datacontenttype: mostly(fc.constant('application/json'), fc.jsonValue()),
      data: mostly(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), fc.jsonValue({ maxDepth: 4 })),
    }, { requiredKeys: ['specversion', 'id', 'type', 'source', 'time', 'subject', 'projectId', 'flowId', 'seq', 'datacontenttype', 'data'] });
    const message = fc.oneof(
      { arbitrary: envelope.map((e) => JSON.stringify(e)), weight: 4 },
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
      envelope.map((e) => JSON.stringify(e)),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.constant(null),
      fc.nat({ max: 20000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
    );
    const values = fc.sample(message, { seed: SEED, numRuns: MESSAGES });
    const kinds = { invalid: 0, unknown: 0, known: 0 };
    const toSend = values.filter((v) => {
      const kind = parseEnvelope(v).kind;
      if (kind === 'known') return (kinds.known++, false);
      kinds[kind === 'invalid' ? 'invalid' : 'unknown']++;
      return true;
    });

    const dlqBefore = await deadLetterCount(sys);
    for (let i = 0; i < toSend.length; i += 50) {
      await publishRaw(sys, toSend.slice(i, i + 50).map((value, j) => ({ key: j % 3 === 0 ? null : `fuzz-${i + j}`, value })));
    }

    // The projector goes on: the poison reaches the dead-letter topic, and a new run is projected.
    await waitFor(async () => (await deadLetterCount(sys)) >= dlqBefore + kinds.invalid, {
      timeoutMs: 30000,
      what: `${kinds.invalid} messages dead-lettered`,
    });
    // The worker goes on: runs triggered after the garbage are executed to the end.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${sys.gatewayUrl}/api/v1/flows/${sys.flowId}/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${sys.apiKey}` },
        body: JSON.stringify({ i }),
      });
      expect(r.status).toBe(201);
      ids.push(((await r.json()) as { id: string }).id);
    }
    await waitFor(
      async () => (await sys.sql<{ n: number }>(`select count(*)::int as n from run_views where id = any($1) and status = 'SUCCEEDED'`, [ids]))[0].n === 3,
      { timeoutMs: 60000, what: 'the runs after the garbage succeeded and projected' },
    );
    expect(await deadLetterCount(sys)).toBe(dlqBefore + kinds.invalid);
    await sys.assertAllAlive();
    for (const name of ['projector', 'flow-worker'] as const) expect(await readiness(sys.app(name))).toBe(200);
    recordFigures('fuzz', 'topic', { seed: SEED, generated: values.length, sent: toSend.length, ...kinds, deadLettered: kinds.invalid, consumersStopped: 0 });
  });
});
