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

/** Varint size of a uint32 field value; throws unless it is an integer in [0, 2^32 - 1]. */
export function uint32Size(v: number, field: string): number {
  if (v >>> 0 !== v) throw unencodable(field, v, "a uint32");
  return varintSize(v);
}

/** Varint size of a uint64 field value held as a number; it must be an integer in [0, 2^53 - 1]. */
export function uint53Size(v: number, field: string): number {
  if (!(v >= 0 && v <= MAX_SAFE && Math.floor(v) === v)) throw unencodable(field, v, "an integer in [0, 2^53-1]");
  return varintSize(v);
}

/** Varint size of an int32 (or open enum) value: a negative one is sign-extended to 10 bytes. */
export function int32Size(v: number, field: string): number {
  if ((v | 0) !== v) throw unencodable(field, v, "an int32");
  return v < 0 ? 10 : varintSize(v);
}

/** Length prefix and UTF-8 bytes of a string. */
export function stringSize(s: string): number {
  const n = utf8Length(s);
  return varintSize(n) + n;
}

/** Length prefix and bytes of a bytes value. */
export function bytesSize(b: Uint8Array): number {
  const n = b.length;
  return varintSize(n) + n;
}
