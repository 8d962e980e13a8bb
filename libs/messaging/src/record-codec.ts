import { crc32c } from '@node-rs/crc32';
import { createRequire } from 'node:module';

/**
 * kafkajs's record encoding, batch checksum and record decoding, computed faster, with the same
 * results. kafkajs 2.2.4 is its last release.
 *
 * - `encodeRecord` (kafkajs's `recordBatch/record/v0`): the same bytes in one buffer sized up front,
 *   written byte by byte. kafkajs builds each record in a zero-filled 512-byte buffer that grows by
 *   copying, each header in another one, each varint through `Buffer.from` of an array and each
 *   varlong through `Long` objects; for the relay's messages (a JSON envelope, four string headers)
 *   that was a third of the command service's CPU in a bulk retry.
 * - `batchCrc32c` (`recordBatch/crc32C`): kafkajs computes it in JavaScript a byte at a time (3.4 ns
 *   a byte here), `@node-rs/crc32` with the CPU's instruction (0.3 ns).
 * - `decodeRecord` (`recordBatch/record/v0/decoder`): the same record object, with the offset and
 *   timestamp added as numbers instead of parsing the batch's strings into `Long`s for each record,
 *   and the headers collected in one object instead of a copy per header.
 *
 * Whatever is not the common shape (a value that is not a string, a Buffer or null, a delta that is
 * not a small integer, a header named `__proto__` or inherited from `Object.prototype`, a truncated
 * record) goes to kafkajs's own code, so every input comes out exactly as kafkajs makes it.
 * `record-codec.spec.ts` compares the two.
 */

const kafkajsRequire = createRequire(require.resolve('kafkajs'));

/** The kafkajs encoder's shape, as the record batch reads it (`buf`, `offset` and the `buffer` getter). */
interface KafkaEncoder {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
}

/** What kafkajs's produce request hands the record encoder for each message. */
export interface RecordFields {
  readonly offsetDelta?: number;
  readonly timestampDelta?: number;
  readonly key?: unknown;
  readonly value?: unknown;
  readonly headers?: Readonly<Record<string, unknown>>;
}

type RecordEncoder = (fields: RecordFields) => KafkaEncoder;

const ENCODER_MODULE = kafkajsRequire.resolve('./src/protocol/encoder');
const RECORD_MODULE = kafkajsRequire.resolve('./src/protocol/recordBatch/record/v0');
const CRC_MODULE = kafkajsRequire.resolve('./src/protocol/recordBatch/crc32C');
const RECORD_DECODER_MODULE = kafkajsRequire.resolve('./src/protocol/recordBatch/record/v0/decoder');
/**
 * The modules that bind the three when they load: the produce request (v4–v7 build on v3's), the
 * record batch and the record batch's decoder.
 */
const BINDING_MODULES = [
  kafkajsRequire.resolve('./src/protocol/requests/produce/v3/request'),
  kafkajsRequire.resolve('./src/protocol/recordBatch/v0'),
  kafkajsRequire.resolve('./src/protocol/recordBatch/v0/decoder'),
];

const Encoder = kafkajsRequire(ENCODER_MODULE) as { prototype: KafkaEncoder };
/** kafkajs's own encoder, for the records the fast path does not take. */
export const kafkajsEncodeRecord = kafkajsRequire(RECORD_MODULE) as RecordEncoder;
/** kafkajs's CRC-32C of a record batch, unsigned. */
export const kafkajsCrc32c = kafkajsRequire(CRC_MODULE) as (buffer: Buffer) => number;

/** The record batch's CRC-32C, unsigned, as kafkajs's `crc32C` answers it. */
export const batchCrc32c = (buffer: Buffer): number => crc32c(buffer) >>> 0;

/** The largest magnitude whose zigzag encoding is still an exact double (2^52). */
const MAX_FAST_LONG = 2 ** 52;

const isBytes = (v: unknown): v is string | Buffer => typeof v === 'string' || Buffer.isBuffer(v);
const byteLength = (v: string | Buffer) => (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);

/** Bytes of an unsigned 32-bit varint. */
function sizeOfUVarInt(u: number): number {
  let n = 1;
  while (u > 0x7f) {
    n++;
    u >>>= 7;
  }
  return n;
}

/** Zigzag of a 32-bit integer, as an unsigned 32-bit value (kafkajs's `encodeZigZag`, then read unsigned). */
const zigzag32 = (v: number) => ((v << 1) ^ (v >> 31)) >>> 0;

/** Zigzag of an integer with |v| < 2^52, exact in doubles. */
const zigzag64 = (v: number) => (v >= 0 ? v * 2 : -v * 2 - 1);

function sizeOfUVarLong(u: number): number {
  let n = 1;
  while (u >= 128) {
    n++;
    u = Math.floor(u / 128);
  }
  return n;
}

/** Size of a nullable varint-prefixed byte field (kafkajs's `sizeOfVarIntBytes`). */
const sizeOfVarIntBytes = (v: string | Buffer | null | undefined, len: number) =>
  v == null ? 1 /* varint -1 */ : sizeOfUVarInt(zigzag32(len)) + len;

class Writer {
  offset = 0;
  constructor(readonly buf: Buffer) {}

  uvarint(u: number): void {
    const buf = this.buf;
    while (u > 0x7f) {
      buf[this.offset++] = (u & 0x7f) | 0x80;
      u >>>= 7;
    }
    buf[this.offset++] = u;
  }

  uvarlong(u: number): void {
    const buf = this.buf;
    while (u >= 128) {
      buf[this.offset++] = (u % 128) | 0x80;
      u = Math.floor(u / 128);
    }
    buf[this.offset++] = u;
  }

  /** A nullable varint-prefixed byte field, `len` its byte length. */
  bytes(v: string | Buffer | null | undefined, len: number): void {
    if (v == null) {
      this.uvarint(zigzag32(-1));
      return;
    }
    this.uvarint(zigzag32(len));
    if (typeof v === 'string') this.offset += this.buf.write(v, this.offset, len, 'utf8');
    else this.offset += v.copy(this.buf, this.offset);
  }
}

/** The headers as kafkajs flattens them: an array value is one header per element, in order. */
function flatHeaders(headers: Readonly<Record<string, unknown>>): { key: string; value: unknown }[] {
  const out: { key: string; value: unknown }[] = [];
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    if (Array.isArray(value)) for (const v of value) out.push({ key, value: v });
    else out.push({ key, value });
  }
  return out;
}

/** One record, the bytes kafkajs's `Record` writes; other shapes go to kafkajs's own encoder. */
export const encodeRecord = (fields: RecordFields): KafkaEncoder => encodeCommonRecord(fields) ?? kafkajsEncodeRecord(fields);

/** `encodeRecord`'s own path: null for a record of a shape it leaves to kafkajs. */
export function encodeCommonRecord(fields: RecordFields): KafkaEncoder | null {
  const { offsetDelta = 0, timestampDelta = 0, key, value, headers = {} } = fields;
  if (
    !Number.isInteger(offsetDelta) ||
    offsetDelta !== (offsetDelta | 0) ||
    !Number.isInteger(timestampDelta) ||
    Math.abs(timestampDelta) >= MAX_FAST_LONG ||
    (key != null && !isBytes(key)) ||
    (value != null && !isBytes(value))
  ) {
    return null;
  }
  const list = flatHeaders(headers);
  const keyLen = key == null ? 0 : byteLength(key);
  const valueLen = value == null ? 0 : byteLength(value);
  const headerLens: number[] = new Array(list.length * 2);
  let headersSize = sizeOfUVarInt(zigzag32(list.length));
  for (let i = 0; i < list.length; i++) {
    const h = list[i];
    if (!isBytes(h.value)) return null;
    const k = byteLength(h.key);
    const v = byteLength(h.value);
    headerLens[2 * i] = k;
    headerLens[2 * i + 1] = v;
    headersSize += sizeOfUVarInt(zigzag32(k)) + k + sizeOfUVarInt(zigzag32(v)) + v;
  }
  const ts = zigzag64(timestampDelta);
  const od = zigzag32(offsetDelta);
  const body =
    1 + // attributes
    sizeOfUVarLong(ts) +
    sizeOfUVarInt(od) +
    sizeOfVarIntBytes(key as string | Buffer | null | undefined, keyLen) +
    sizeOfVarIntBytes(value as string | Buffer | null | undefined, valueLen) +
    headersSize;
  const lengthPrefix = zigzag32(body);
  const w = new Writer(Buffer.allocUnsafe(sizeOfUVarInt(lengthPrefix) + body));
  w.uvarint(lengthPrefix);
  w.buf[w.offset++] = 0; // attributes: none used
  w.uvarlong(ts);
  w.uvarint(od);
  w.bytes(key as string | Buffer | null | undefined, keyLen);
  w.bytes(value as string | Buffer | null | undefined, valueLen);
  w.uvarint(zigzag32(list.length));
  for (let i = 0; i < list.length; i++) {
    w.bytes(list[i].key, headerLens[2 * i]);
    w.bytes(list[i].value as string | Buffer, headerLens[2 * i + 1]);
  }
  if (w.offset !== w.buf.length) throw new Error(`record encoder wrote ${w.offset} of ${w.buf.length} bytes`);
  // An encoder as kafkajs's record batch reads it, without its constructor's zero-filled buffer.
  const encoder = Object.create(Encoder.prototype) as KafkaEncoder;
  encoder.buf = w.buf;
  encoder.offset = w.offset;
  return encoder;
}

// ---- Decoding ----

/** kafkajs's decoder as the record decoder reads it: a buffer and a position in it. */
export interface KafkaDecoder {
  buffer: Buffer;
  offset: number;
}

/** What kafkajs's record batch decoder hands the record decoder (the batch's fields). */
export interface RecordBatchContext {
  readonly firstOffset: string;
  readonly firstTimestamp: string;
  readonly maxTimestamp: string;
  readonly magicByte?: number;
  readonly isControlBatch?: boolean;
  readonly timestampType?: number;
  readonly [field: string]: unknown;
}

/** A record as kafkajs's decoder answers it. */
export interface DecodedRecord {
  readonly magicByte: number | undefined;
  readonly attributes: number;
  readonly timestamp: string;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, Buffer | null | (Buffer | null)[]>;
  readonly isControlRecord: boolean;
  readonly batchContext: RecordBatchContext;
}

type RecordDecoder = (decoder: KafkaDecoder, batchContext?: RecordBatchContext) => DecodedRecord;

/** kafkajs's own record decoder, for the records the fast path does not take. */
export const kafkajsDecodeRecord = kafkajsRequire(RECORD_DECODER_MODULE) as RecordDecoder;
const LOG_APPEND_TIME = (kafkajsRequire('./src/protocol/timestampTypes') as { LOG_APPEND_TIME: number }).LOG_APPEND_TIME;

/** Not one of the common shapes: the record goes to kafkajs's decoder. */
const UNCOMMON = Symbol('uncommon');

/** One record, the object kafkajs's record decoder makes; other shapes go to kafkajs's own decoder. */
export function decodeRecord(decoder: KafkaDecoder, batchContext: RecordBatchContext = {} as RecordBatchContext): DecodedRecord {
  return decodeCommonRecord(decoder, batchContext) ?? kafkajsDecodeRecord(decoder, batchContext);
}

/** `decodeRecord`'s own path: null, the decoder where it was, for a record it leaves to kafkajs. */
export function decodeCommonRecord(decoder: KafkaDecoder, batchContext: RecordBatchContext): DecodedRecord | null {
  const start = decoder.offset;
  const record = decodeCommon(decoder, batchContext);
  if (record !== UNCOMMON) return record;
  decoder.offset = start;
  return null;
}

/** A position in a record's bytes, read as kafkajs's decoder reads them. */
class RecordReader {
  constructor(
    readonly buf: Buffer,
    public at: number,
  ) {}

  /**
   * kafkajs's varint: 7 bits a byte, added with 32-bit shifts, then zigzag; past the end a byte
   * reads as 0 there too (the bounds are checked once the record is read).
   */
  varint(): number {
    const buf = this.buf;
    let result = 0;
    let shift = 0;
    let b: number;
    do {
      b = buf[this.at++] ?? 0;
      result += (b & 0x7f) << shift;
      shift += 7;
    } while (b >= 0x80);
    return (result >>> 1) ^ -(result & 1);
  }

  /** A zigzag varlong (the timestamp delta), in doubles while it stays below 2^49 (seven bytes); UNCOMMON past that. */
  varlong(): number | typeof UNCOMMON {
    let zz = 0;
    let scale = 1;
    let b: number;
    let n = 0;
    do {
      if (n === 7) return UNCOMMON;
      b = this.buf[this.at++] ?? 0;
      zz += (b & 0x7f) * scale;
      scale *= 128;
      n++;
    } while (b >= 0x80);
    return zz % 2 === 0 ? zz / 2 : -(zz + 1) / 2;
  }

  /** A varint-prefixed byte field: its bytes (a view, as kafkajs's), null, or UNCOMMON past the end. */
  bytes(): Buffer | null | typeof UNCOMMON {
    const len = this.varint();
    if (len === -1) return null;
    if (len < 0 || this.at + len > this.buf.length) return UNCOMMON;
    const b = this.buf.subarray(this.at, this.at + len);
    this.at += len;
    return b;
  }
}

function decodeCommon(decoder: KafkaDecoder, ctx: RecordBatchContext): DecodedRecord | typeof UNCOMMON {
  const buf = decoder.buffer;
  const end = buf.length;
  const r = new RecordReader(buf, decoder.offset);
  if (r.at >= end) return UNCOMMON;
  const attributes = buf.readInt8(r.at++);
  const timestampDelta = r.varlong();
  if (timestampDelta === UNCOMMON) return UNCOMMON;
  const offsetDelta = r.varint();
  const key = r.bytes();
  if (key === UNCOMMON) return UNCOMMON;
  const value = r.bytes();
  if (value === UNCOMMON) return UNCOMMON;
  const count = r.varint();
  // -1 is no headers; kafkajs makes `new Array(count)` of any other negative count, and throws.
  if (count < -1) return UNCOMMON;
  const headers: Record<string, Buffer | null | (Buffer | null)[]> = {};
  for (let i = 0; i < count; i++) {
    const keyBytes = r.bytes();
    if (keyBytes === UNCOMMON) return UNCOMMON;
    const name = keyBytes === null ? 'null' : keyBytes.toString('utf8');
    // kafkajs collects headers with an object spread: `__proto__` is set as an own property there
    // (here it would set the prototype), and a name inherited from Object.prototype reads as seen.
    if (name === '__proto__') return UNCOMMON;
    const v = r.bytes();
    if (v === UNCOMMON) return UNCOMMON;
    const seen = headers[name];
    if (seen !== undefined && !Object.hasOwn(headers, name)) return UNCOMMON;
    headers[name] = seen === undefined ? v : Array.isArray(seen) ? [...seen, v] : [seen, v];
  }
  const at = r.at;
  if (at > end) return UNCOMMON;
  const firstOffset = Number(ctx.firstOffset);
  const firstTimestamp = Number(ctx.firstTimestamp);
  const offset = firstOffset + offsetDelta;
  const timestamp = firstTimestamp + timestampDelta;
  if (!Number.isSafeInteger(firstOffset) || !Number.isSafeInteger(offset) || !Number.isSafeInteger(firstTimestamp) || !Number.isSafeInteger(timestamp)) {
    return UNCOMMON;
  }
  decoder.offset = at;
  return {
    magicByte: ctx.magicByte,
    attributes,
    timestamp: ctx.timestampType === LOG_APPEND_TIME && ctx.maxTimestamp ? ctx.maxTimestamp : String(timestamp),
    offset: String(offset),
    key,
    value,
    headers,
    // kafkajs's default applies to a missing field only.
    isControlRecord: ctx.isControlBatch === undefined ? false : ctx.isControlBatch,
    batchContext: ctx,
  };
}

/**
 * Makes kafkajs encode records with `encodeRecord`, checksum batches with `batchCrc32c` and decode
 * records with `decodeRecord`. Must run before kafkajs builds its first produce request or reads
 * its first fetch response (the modules that bind the three load then): the messaging library does
 * it when it loads. Throws if one of them is already loaded.
 */
export function installRecordCodec(): void {
  if (recordCodecInstalled()) return;
  const loaded = BINDING_MODULES.filter((m) => require.cache[m]);
  if (loaded.length > 0) throw new Error(`kafkajs already bound its record codec: ${loaded.join(', ')}`);
  for (const [path, replacement] of [
    [RECORD_MODULE, encodeRecord],
    [CRC_MODULE, batchCrc32c],
    [RECORD_DECODER_MODULE, decodeRecord],
  ] as const) {
    const cached = require.cache[path];
    if (!cached) throw new Error(`kafkajs module not loaded: ${path}`);
    cached.exports = replacement;
  }
}

/** Whether kafkajs encodes, checksums and decodes records with this module's functions. */
export const recordCodecInstalled = (): boolean =>
  kafkajsRequire(RECORD_MODULE) === encodeRecord && kafkajsRequire(CRC_MODULE) === batchCrc32c && kafkajsRequire(RECORD_DECODER_MODULE) === decodeRecord;
