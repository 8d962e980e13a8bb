import fc from 'fast-check';
import { randomBytes, randomUUID } from 'node:crypto';
import { createKafka } from './kafka';
import {
  batchCrc32c,
  decodeCommonRecord,
  decodeRecord,
  encodeCommonRecord,
  encodeRecord,
  kafkajsCrc32c,
  kafkajsDecodeRecord,
  kafkajsEncodeRecord,
  recordCodecInstalled,
  type KafkaDecoder,
  type RecordBatchContext,
  type RecordFields,
} from './record-codec';

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
    let own = 0;
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
          if (encodeCommonRecord(fields)) own++;
          expect(outcome(encodeRecord, fields)).toEqual(outcome(kafkajsEncodeRecord, fields));
        },
      ),
      { numRuns: 3000 },
    );
    // Its own path wrote them (all but deltas of 2^52 and more), not kafkajs's behind it.
    expect(own).toBeGreaterThan(2000);
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
      expect(encodeCommonRecord(fields)?.buffer.toString('hex')).toBe(kafkajsEncodeRecord(fields).buffer.toString('hex'));
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

describe('decodeRecord', () => {
  /** What a decoder made of the bytes (Buffers as hex, the decoder's position after), or what it threw. */
  const decoded = (decode: (d: KafkaDecoder, c: RecordBatchContext) => unknown, bytes: Buffer, ctx: RecordBatchContext) => {
    const decoder = kafkajsDecoder(bytes);
    try {
      const record = decode(decoder, ctx);
      return { record: JSON.parse(JSON.stringify(record, (_k, v) => (v?.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('hex') : v))), at: decoder.offset };
    } catch (e) {
      return { threw: (e as Error).message };
    }
  };
  const Decoder = kafkajsRequire('decoder') as new (buffer: Buffer) => KafkaDecoder & { readVarInt(): number; readVarIntArray(reader: unknown): unknown[] };
  /**
   * kafkajs's decoder, except that an array longer than the bytes left throws: kafkajs reads a
   * garbage header count of millions as it comes (one empty header per missing byte), which would
   * hang the test, not tell the two apart.
   */
  class GuardedDecoder extends Decoder {
    override readVarIntArray(reader: unknown) {
      const at = this.offset;
      const length = this.readVarInt();
      this.offset = at;
      if (length > this.buffer.length - this.offset) throw new Error(TOO_LONG);
      return super.readVarIntArray(reader);
    }
  }
  const TOO_LONG = 'array longer than the bytes left';
  const kafkajsDecoder = (bytes: Buffer): KafkaDecoder => new GuardedDecoder(bytes);
  /** A record's bytes without its length prefix, as the batch decoder hands them over. */
  const body = (fields: RecordFields) => {
    const d = kafkajsDecoder(kafkajsEncodeRecord(fields).buffer) as KafkaDecoder & { readVarIntBytes(): Buffer };
    return d.readVarIntBytes();
  };
  const longText = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 45n })).map(String);
  const context = fc.record({
    firstOffset: longText,
    firstTimestamp: longText,
    maxTimestamp: longText,
    magicByte: fc.constant(2),
    isControlBatch: fc.boolean(),
    timestampType: fc.constantFrom(0, 1),
    lastOffsetDelta: fc.integer({ min: 0, max: 500 }),
  });

  it('answers what kafkajs answers, for any record kafkajs writes and any batch around it', () => {
    let own = 0;
    fc.assert(
      fc.property(
        fc.record(
          {
            key: fc.oneof(bytes, fc.constant(null)),
            value: fc.oneof(bytes, fc.constant(null)),
            headers: fc.dictionary(fc.string({ unit: 'binary', maxLength: 40 }), fc.oneof(bytes, fc.array(bytes, { maxLength: 3 })), { maxKeys: 6 }),
            offsetDelta: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(...varintEdges)),
            timestampDelta: fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(...longEdges)),
          },
          { requiredKeys: [] },
        ),
        context,
        (fields, ctx) => {
          const b = body(fields);
          if (decodeCommonRecord(kafkajsDecoder(b), ctx)) own++;
          expect(decoded(decodeRecord, b, ctx)).toEqual(decoded(kafkajsDecodeRecord, b, ctx));
        },
      ),
      { numRuns: 3000 },
    );
    // Its own path read a good part of them: all but offsets or timestamps past 2^53 (half the
    // generated batches each) and deltas of 2^49 and more (a third of the records).
    expect(own).toBeGreaterThan(500);
  });

  it('answers what kafkajs answers for arbitrary bytes: truncated, malformed, a header key on Object.prototype', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), context, (raw, ctx) => {
        const b = Buffer.from(raw);
        const theirs = decoded(kafkajsDecodeRecord, b, ctx);
        fc.pre(theirs.threw !== TOO_LONG);
        expect(decoded(decodeRecord, b, ctx)).toEqual(theirs);
      }),
      { numRuns: 3000 },
    );
    const ctx = { firstOffset: '41', firstTimestamp: '1700000000000', maxTimestamp: '1700000000100', magicByte: 2, timestampType: 0 };
    // Found by the property above: a negative header count other than -1 (here -32).
    for (const raw of [[0, 0, 0, 0, 0, 63], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]) {
      expect(decoded(decodeRecord, Buffer.from(raw), ctx)).toEqual(decoded(kafkajsDecodeRecord, Buffer.from(raw), ctx));
    }
    for (const name of ['__proto__', 'toString', 'constructor', 'hasOwnProperty', 'null', 'event-id']) {
      const headers = JSON.parse(`{${JSON.stringify(name)}: ["a", "b"], "x": "y"}`) as Record<string, string[]>;
      const b = body({ key: 'k', value: 'v', headers, offsetDelta: 3, timestampDelta: 5 });
      expect(decoded(decodeRecord, b, ctx)).toEqual(decoded(kafkajsDecodeRecord, b, ctx));
      expect(decoded(decodeRecord, b.subarray(0, b.length - 1), ctx)).toEqual(decoded(kafkajsDecodeRecord, b.subarray(0, b.length - 1), ctx));
    }
  });

  it('reads the relay’s messages with their offsets and timestamps', () => {
    const ctx = { firstOffset: '1000000', firstTimestamp: '1764547200000', maxTimestamp: '1764547200009', magicByte: 2, timestampType: 0 };
    const id = randomUUID();
    const record = decodeCommonRecord(kafkajsDecoder(body({ key: 'run_1', value: '{"a":1}', headers: { 'event-id': id, 'event-type': 't' }, offsetDelta: 7, timestampDelta: 9 })), ctx);
    expect(record).toMatchObject({ offset: '1000007', timestamp: '1764547200009', key: Buffer.from('run_1'), value: Buffer.from('{"a":1}'), isControlRecord: false });
    expect(record?.headers).toEqual({ 'event-id': Buffer.from(id), 'event-type': Buffer.from('t') });
  });
});

describe('installRecordCodec', () => {
  it('is in place once the messaging library is loaded, where kafkajs’s produce request, record batch and its decoder bind them', () => {
    expect(createKafka).toBeInstanceOf(Function);
    expect(recordCodecInstalled()).toBe(true);
    expect(kafkajsRequire('recordBatch/record/v0')).toBe(encodeRecord);
    expect(kafkajsRequire('recordBatch/crc32C')).toBe(batchCrc32c);
    expect(kafkajsRequire('recordBatch/record/v0/decoder')).toBe(decodeRecord);
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
