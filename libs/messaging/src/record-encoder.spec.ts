import fc from 'fast-check';
import { randomBytes, randomUUID } from 'node:crypto';
import { createKafka } from './kafka';
import { batchCrc32c, encodeRecord, kafkajsCrc32c, kafkajsEncodeRecord, recordEncodingInstalled, type RecordFields } from './record-encoder';

const kafkajsRequire = (path: string) => require(require.resolve(`kafkajs/src/protocol/${path}`));

/** The bytes an encoder wrote, or the error it threw. */
const outcome = (encode: (f: RecordFields) => { buffer: Buffer }, fields: RecordFields) => {
  try {
    return { bytes: encode(fields).buffer.toString('hex') };
  } catch (e) {
    return { threw: (e as Error).message };
  }
};

const bytes = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)));
const varintEdges = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, 2 ** 20, 2 ** 27, 2 ** 31 - 1, -(2 ** 31)];
const longEdges = [...varintEdges, 2 ** 31, 2 ** 35, -(2 ** 40), 2 ** 52 - 1, -(2 ** 52) + 1];

describe('encodeRecord', () => {
  it('writes the bytes kafkajs writes, for any key, value, headers and deltas', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            key: fc.oneof(bytes, fc.constant(null), fc.constant(undefined)),
            value: fc.oneof(bytes, fc.constant(null), fc.constant(undefined)),
            headers: fc.dictionary(fc.string({ unit: 'binary', maxLength: 40 }), fc.oneof(bytes, fc.array(bytes, { maxLength: 3 })), { maxKeys: 6 }),
            offsetDelta: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(...varintEdges)),
            timestampDelta: fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(...longEdges)),
          },
          { requiredKeys: [] },
        ),
        (fields) => {
          expect(outcome(encodeRecord, fields)).toEqual(outcome(kafkajsEncodeRecord, fields));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('writes the relay’s messages as kafkajs does: a run id key, a JSON envelope, string headers', () => {
    for (let i = 0; i < 500; i++) {
      const fields = {
        key: randomUUID(),
        value: JSON.stringify({ id: randomUUID(), type: 'flowrun.retried.v1', data: { note: 'ünïcödé 🙂'.repeat(i % 50) } }),
        headers: { 'event-type': 'flowrun.retried.v1', 'event-schema-version': '1', 'event-id': randomUUID(), traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` },
        offsetDelta: i,
        timestampDelta: i % 7,
      };
      expect(encodeRecord(fields).buffer.toString('hex')).toBe(kafkajsEncodeRecord(fields).buffer.toString('hex'));
    }
  });

  it('leaves other shapes to kafkajs: numbers, objects, fractional deltas, a null header value', () => {
    const odd: RecordFields[] = [
      { key: 42, value: 'v' },
      { key: 'k', value: { toString: () => 'object value' } },
      { key: 'k', value: 'v', offsetDelta: 1.5 },
      { key: 'k', value: 'v', timestampDelta: 2.75 },
      { key: 'k', value: 'v', timestampDelta: 2 ** 60 },
      { key: 'k', value: 'v', offsetDelta: 2 ** 33 },
      { key: 'k', value: 'v', headers: { a: 7 } },
      { key: 'k', value: 'v', headers: { a: null } },
    ];
    for (const fields of odd) expect(outcome(encodeRecord, fields)).toEqual(outcome(kafkajsEncodeRecord, fields));
  });
});

describe('batchCrc32c', () => {
  it('equals kafkajs’s CRC-32C, unsigned', () => {
    for (let len = 0; len < 300; len++) {
      const b = randomBytes(len);
      expect(batchCrc32c(b)).toBe(kafkajsCrc32c(b));
    }
    const big = randomBytes(600_000);
    expect(batchCrc32c(big)).toBe(kafkajsCrc32c(big));
    // RFC 3720's check value for CRC-32C.
    expect(batchCrc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});

describe('installRecordEncoding', () => {
  it('is in place once the messaging library is loaded, where kafkajs’s produce request and record batch bind them', () => {
    expect(createKafka).toBeInstanceOf(Function);
    expect(recordEncodingInstalled()).toBe(true);
    expect(kafkajsRequire('recordBatch/record/v0')).toBe(encodeRecord);
    expect(kafkajsRequire('recordBatch/crc32C')).toBe(batchCrc32c);
  });

  it('leaves a record batch kafkajs’s decoder reads back, its checksum included', async () => {
    const { RecordBatch } = kafkajsRequire('recordBatch/v0');
    const Decoder = kafkajsRequire('decoder');
    const decodeBatch = kafkajsRequire('recordBatch/v0/decoder');
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: randomUUID(), value: `{"n":${i},"text":"ünï 🙂"}`, headers: { 'event-id': randomUUID() } }));
    const now = Date.now();
    const batch = await RecordBatch({ records: messages.map((m, i) => encodeRecord({ ...m, offsetDelta: i })), firstTimestamp: now, maxTimestamp: now, lastOffsetDelta: 49 });
    const buffer = batch.buffer as Buffer;
    // FirstOffset (8) Length (4) PartitionLeaderEpoch (4) Magic (1), then the CRC over the rest.
    expect(buffer.readUInt32BE(8 + 4 + 4 + 1)).toBe(kafkajsCrc32c(buffer.subarray(8 + 4 + 4 + 1 + 4)));
    const decoded = await decodeBatch(new Decoder(buffer));
    expect(decoded.records.map((r: { key: Buffer; value: Buffer; headers: Record<string, Buffer> }) => ({ key: r.key.toString(), value: r.value.toString(), headers: { 'event-id': r.headers['event-id'].toString() } }))).toEqual(messages);
  });
});
