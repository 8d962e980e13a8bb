import { crc32c } from '@node-rs/crc32';
import { createRequire } from 'node:module';

/**
 * kafkajs's Record encoder (`recordBatch/record/v0`), computed faster: the same bytes in one
 * buffer sized up front, written byte by byte. kafkajs builds each record in a zero-filled 512-byte
 * buffer that grows by copying, each header in another one, each varint through `Buffer.from` of an
 * array and each varlong through `Long` objects; for the relay's messages (a JSON envelope, three
 * or four string headers) that was a third of the command service's CPU in a bulk retry.
 *
 * The record batch's CRC-32C likewise: kafkajs computes it in JavaScript a byte at a time (3.4 ns a
 * byte here), `@node-rs/crc32` with the CPU's instruction (0.3 ns), the same value.
 *
 * Records whose fields are not the common shapes (key and value a string, a Buffer or null, header
 * values strings or Buffers, integer deltas) go to kafkajs's own encoder, so every input encodes
 * exactly as kafkajs encodes it. `record-encoder.spec.ts` compares the two byte for byte.
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
/** The modules that bind the two when they load: the produce request (v4–v7 build on v3's) and the record batch. */
const BINDING_MODULES = [
  kafkajsRequire.resolve('./src/protocol/requests/produce/v3/request'),
  kafkajsRequire.resolve('./src/protocol/recordBatch/v0'),
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
export function encodeRecord(fields: RecordFields): KafkaEncoder {
  const { offsetDelta = 0, timestampDelta = 0, key, value, headers = {} } = fields;
  if (
    !Number.isInteger(offsetDelta) ||
    offsetDelta !== (offsetDelta | 0) ||
    !Number.isInteger(timestampDelta) ||
    Math.abs(timestampDelta) >= MAX_FAST_LONG ||
    (key != null && !isBytes(key)) ||
    (value != null && !isBytes(value))
  ) {
    return kafkajsEncodeRecord(fields);
  }
  const list = flatHeaders(headers);
  const keyLen = key == null ? 0 : byteLength(key);
  const valueLen = value == null ? 0 : byteLength(value);
  const headerLens: number[] = new Array(list.length * 2);
  let headersSize = sizeOfUVarInt(zigzag32(list.length));
  for (let i = 0; i < list.length; i++) {
    const h = list[i];
    if (!isBytes(h.value)) return kafkajsEncodeRecord(fields);
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

/**
 * Makes kafkajs's produce requests encode records with `encodeRecord` and checksum their batches
 * with `batchCrc32c`. Must run before kafkajs builds its first produce request or reads its first
 * fetch response (the modules that bind the two load then): the messaging library does it when it
 * loads. Throws if one of them is already loaded.
 */
export function installRecordEncoding(): void {
  if (recordEncodingInstalled()) return;
  const loaded = BINDING_MODULES.filter((m) => require.cache[m]);
  if (loaded.length > 0) throw new Error(`kafkajs already bound its record encoder and checksum: ${loaded.join(', ')}`);
  for (const [path, replacement] of [
    [RECORD_MODULE, encodeRecord],
    [CRC_MODULE, batchCrc32c],
  ] as const) {
    const cached = require.cache[path];
    if (!cached) throw new Error(`kafkajs module not loaded: ${path}`);
    cached.exports = replacement;
  }
}

/** Whether kafkajs encodes records with `encodeRecord` and checksums batches with `batchCrc32c`. */
export const recordEncodingInstalled = (): boolean =>
  kafkajsRequire(RECORD_MODULE) === encodeRecord && kafkajsRequire(CRC_MODULE) === batchCrc32c;
