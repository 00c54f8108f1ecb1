import { unencodable } from "./wire-errors.js";

/**
 * Byte-level writing for the generated envelope encoder (generated/protocast/v1/
 * envelope_codec.ts): sizes that also validate, then varints and length-delimited values
 * written straight into a buffer that was allocated at its exact final size.
 *
 * Why not BinaryWriter from @bufbuild/protobuf/wire: it grows its buffer as it goes and copies
 * the result out in finish(), and the package exports no routine that writes a varint into a
 * Uint8Array at an offset (its varint32write appends to a number[] and is not public). The
 * encoder knows every size before it writes, so it needs only these few primitives.
 *
 * Every write function takes the buffer and a position and returns the position after what it
 * wrote. 64-bit fields are numbers in [0, 2^53 - 1]; the size pass checks every number before
 * anything is written, so the write pass can trust its input.
 */

const encoder = new TextEncoder();

/** Bytes taken by an unsigned varint of value 0 <= v <= 2^53 - 1. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  if (v < 0x40000000000) return 6;
  if (v < 0x2000000000000) return 7;
  return 8;
}

/** Writes an unsigned varint of value 0 <= v <= 2^53 - 1. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  // Bitwise operators see only 32 bits, so the bytes above 2^31 use arithmetic.
  while (v > 0x7fffffff) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/**
 * Writes a negative int32 the way protobuf does: sign-extended to 64 bits, so always 10 bytes.
 * Only enum fields (Error.code, Unsubscribed.code) can hold one.
 */
export function writeNegativeInt32(buf: Uint8Array, pos: number, v: number): number {
  for (let i = 0; i < 9; i++) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>= 7;
  }
  buf[pos++] = 1;
  return pos;
}

/** Scratch space for measuring non-ASCII strings; grown on demand up to SCRATCH_MAX. */
let scratch = new Uint8Array(1024);
const SCRATCH_MAX = 65536;

/**
 * UTF-8 byte length of a string, as TextEncoder would produce it (a lone surrogate becomes
 * U+FFFD, three bytes, exactly as protobuf-es writes it). ASCII, by far the common case for
 * method names, channels and ids, is counted by a scan; anything else is measured by letting
 * the platform encoder write it, so no UTF-8 rules are restated here.
 */
export function utf8Length(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) > 0x7f) return measureUtf8(s);
  }
  return n;
}

function measureUtf8(s: string): number {
  // A UTF-16 code unit never takes more than 3 UTF-8 bytes.
  const need = s.length * 3;
  if (need > SCRATCH_MAX) return encoder.encode(s).length;
  if (need > scratch.length) scratch = new Uint8Array(SCRATCH_MAX);
  return encoder.encodeInto(s, scratch).written;
}

/**
 * Writes a length-prefixed string. The caller sized the buffer with utf8Length, so the text
 * always fits. ASCII is copied as is (its UTF-8 bytes are its code units); at the first other
 * character the whole string goes to TextEncoder.encodeInto.
 */
export function writeString(buf: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  // The byte length is at least the code-unit count, so this prefix size is a lower bound.
  const guess = varintSize(n);
  const start = pos + guess;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    buf[start + i] = c;
  }
  if (i === n) {
    writeVarint(buf, pos, n);
    return start + n;
  }
  const written = encoder.encodeInto(s, buf.subarray(start)).written;
  const prefix = varintSize(written);
  // A longer prefix moves the text right; the exact total size leaves room for it.
  if (prefix !== guess) buf.copyWithin(pos + prefix, start, start + written);
  writeVarint(buf, pos, written);
  return pos + prefix + written;
}

/** Writes a length-prefixed byte string. */
export function writeBytes(buf: Uint8Array, pos: number, b: Uint8Array): number {
  pos = writeVarint(buf, pos, b.length);
  buf.set(b, pos);
  return pos + b.length;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// One call per field of the generated codec: a default value (0, "", empty bytes) takes no
// bytes and writes nothing, as in proto3, so that a field costs the codec one short line. Each
// is a small function the compiler inlines into the generated code. `tagBytes` is the length of
// the field's tag; `tag` is its value, (field number << 3) | wire type, and the write functions
// take it only when it fits in one byte (field numbers up to 15).

/** Size of a uint32 field with its tag, 0 when the value is 0; throws unless it is an integer in [0, 2^32 - 1]. */
export function uint32FieldSize(v: number, tagBytes: number, field: string): number {
  if (v === 0) return 0;
  if (v >>> 0 !== v) throw unencodable(field, v, "a uint32");
  return tagBytes + varintSize(v);
}

/** Size of a uint64 field held as a number, with its tag; it must be an integer in [0, 2^53 - 1]. */
export function uint53FieldSize(v: number, tagBytes: number, field: string): number {
  if (v === 0) return 0;
  if (!(v >= 0 && v <= MAX_SAFE && Math.floor(v) === v)) throw unencodable(field, v, "an integer in [0, 2^53-1]");
  return tagBytes + varintSize(v);
}

/** Size of an int32 (or open enum) field with its tag: a negative value is sign-extended to 10 bytes. */
export function int32FieldSize(v: number, tagBytes: number, field: string): number {
  if (v === 0) return 0;
  if ((v | 0) !== v) throw unencodable(field, v, "an int32");
  return tagBytes + (v < 0 ? 10 : varintSize(v));
}

/** Size of a string field with its tag, length prefix and UTF-8 bytes; 0 when the string is empty. */
export function stringFieldSize(s: string, tagBytes: number): number {
  if (s.length === 0) return 0;
  const n = utf8Length(s);
  return tagBytes + varintSize(n) + n;
}

/** Size of a bytes field with its tag and length prefix; 0 when it is empty. */
export function bytesFieldSize(b: Uint8Array, tagBytes: number): number {
  const n = b.length;
  return n === 0 ? 0 : tagBytes + varintSize(n) + n;
}

/** Writes a tag of any length. */
export function writeTag(buf: Uint8Array, pos: number, tag: number): number {
  if (tag < 0x80) {
    buf[pos] = tag;
    return pos + 1;
  }
  return writeVarint(buf, pos, tag);
}

/** Writes a non-zero uint32 or uint64 field after its one-byte tag. */
export function writeVarintField(buf: Uint8Array, pos: number, tag: number, v: number): number {
  if (v === 0) return pos;
  buf[pos] = tag;
  return writeVarint(buf, pos + 1, v);
}

/** Writes a non-zero int32 field after its one-byte tag, a negative value in 10 bytes. */
export function writeInt32Field(buf: Uint8Array, pos: number, tag: number, v: number): number {
  if (v === 0) return pos;
  buf[pos] = tag;
  return v < 0 ? writeNegativeInt32(buf, pos + 1, v) : writeVarint(buf, pos + 1, v);
}

/** Writes a non-empty string field after its one-byte tag. */
export function writeStringField(buf: Uint8Array, pos: number, tag: number, s: string): number {
  if (s.length === 0) return pos;
  buf[pos] = tag;
  return writeString(buf, pos + 1, s);
}

/** Writes a non-empty bytes field after its one-byte tag. */
export function writeBytesField(buf: Uint8Array, pos: number, tag: number, b: Uint8Array): number {
  if (b.length === 0) return pos;
  buf[pos] = tag;
  return writeBytes(buf, pos + 1, b);
}
