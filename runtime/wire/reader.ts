import { badEnvelope, tooManyEntries } from "./wire-errors.js";

/*
 * Byte-level reading for the generated envelope decoder (generated/protocast/v1/
 * envelope_codec.ts). Every read takes `end`, the end of the message
 * being read, and never looks past it: a field that overruns its enclosing message is an error,
 * not something to continue from.
 *
 * Why not BinaryReader from @bufbuild/protobuf/wire: its tag() returns a new array per field,
 * its uint64() returns a bigint that would then be converted, and it bounds reads only by the
 * whole buffer. The semantics here follow it wherever it accepts input (varint lengths, how
 * uint32, int32 and bool read overlong varints, tag limits), so that anything this reader
 * accepts, protobuf-es accepts with the same meaning; the property tests check that.
 */

export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const SGROUP = 3;
export const EGROUP = 4;
export const I32 = 5;

/**
 * Strings up to this many bytes are tried as ASCII before calling TextDecoder, whose fixed cost
 * per call dominates for short ids. Past about 12 characters V8 builds the concatenation as a
 * rope and TextDecoder wins (measured on Node 20).
 */
const ASCII_FAST_MAX = 12;

// ignoreBOM: a leading U+FEFF in a protobuf string is text, as protobuf-es also reads it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/*
 * Recently decoded strings of 13 to 64 bytes, by their bytes. The same method names, channels
 * and epochs arrive in frame after frame, and one TextDecoder call (~85 ns here, whatever the
 * length) costs more than comparing the bytes with a cached copy. Direct-mapped: a slot is
 * chosen from the length and two bytes, and a miss simply replaces it. Only bytes that decoded
 * without error are cached, so a hit returns exactly what decoding would.
 */
const CACHE_MAX = 64;
const CACHE_SLOTS = 64;
const cachedBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(CACHE_SLOTS).fill(undefined);
const cachedText: string[] = new Array<string>(CACHE_SLOTS).fill("");

function cacheSlot(buf: Uint8Array, start: number, stop: number): number {
  return ((stop - start) * 31 + buf[start + 1]! * 7 + buf[stop - 1]!) & (CACHE_SLOTS - 1);
}

function cached(buf: Uint8Array, start: number, stop: number, slot: number): string | undefined {
  const bytes = cachedBytes[slot];
  if (bytes === undefined || bytes.length !== stop - start) return undefined;
  for (let i = 0, j = start; j < stop; i++, j++) if (bytes[i] !== buf[j]) return undefined;
  return cachedText[slot];
}

export class WireReader {
  pos = 0;
  readonly buf: Uint8Array;
  readonly maxRepeated: number;

  constructor(buf: Uint8Array, maxRepeated: number) {
    this.buf = buf;
    this.maxRepeated = maxRepeated;
  }

  /** Reads a field tag. Like protobuf-es: at most 5 bytes, fitting 32 bits, field number > 0. */
  tag(end: number): number {
    const b = this.buf[this.pos]!;
    if (b >= 0x80) return this.longTag(end);
    if (b < 8) throw badEnvelope(`field number 0 at byte ${String(this.pos)}`);
    this.pos++;
    return b;
  }

  private longTag(end: number): number {
    const start = this.pos;
    let pos = start;
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= end) throw this.truncated(start);
      const b = this.buf[pos++]!;
      if (shift === 28 && b > 0x0f) throw badEnvelope(`tag at byte ${String(start)} does not fit 32 bits`);
      v |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    this.pos = pos;
    v >>>= 0;
    if (v < 8) throw badEnvelope(`field number 0 at byte ${String(start)}`);
    return v;
  }

  /**
   * Reads a varint as uint32: up to 10 bytes, keeping the low 32 bits, as protobuf-es and
   * protoc do for uint32 fields and length prefixes.
   */
  uint32(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= end) throw this.truncated(pos);
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let v = b & 0x7f;
    for (let shift = 7; shift < 70; shift += 7) {
      if (pos >= end) throw this.truncated(this.pos);
      b = buf[pos++]!;
      // A shift of 28 keeps the byte's low 4 bits; higher shifts only consume bytes.
      if (shift < 32) v |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return v >>> 0;
      }
    }
    throw badEnvelope(`varint longer than 10 bytes at byte ${String(this.pos)}`);
  }

  /** Reads an enum as int32: the low 32 bits of the varint, signed. */
  int32(end: number): number {
    return this.uint32(end) | 0;
  }

  /**
   * Reads a uint64 that must stay below 2^53 so that it is exact as a number. Bits past 64 in
   * a 10-byte varint are dropped, as protobuf-es drops them, before the range check.
   */
  uint53(end: number): number {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    if (pos >= end) throw this.truncated(start);
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    // Bytes 0-7 carry bits 0-55. While the value is below 2^53 every partial sum is exact;
    // once it is not, the sum stays at or above 2^53 and the check below refuses it.
    let v = b & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 10; i++) {
      if (pos >= end) throw this.truncated(start);
      b = buf[pos++]!;
      if (i < 8) v += (b & 0x7f) * scale;
      else if (i === 8 ? (b & 0x7f) !== 0 : (b & 0x01) !== 0) v = Infinity;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw badEnvelope(`64-bit value above 2^53-1 at byte ${String(start)}`);
        this.pos = pos;
        return v;
      }
      scale *= 0x80;
    }
    throw badEnvelope(`varint longer than 10 bytes at byte ${String(start)}`);
  }

  /** Reads a bool: true when any of the varint's 64 bits is set, as protobuf-es reads it. */
  bool(end: number): boolean {
    const start = this.pos;
    let pos = start;
    let any = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw this.truncated(start);
      const b = this.buf[pos++]!;
      any |= i < 9 ? b & 0x7f : b & 0x01;
      if (b < 0x80) {
        this.pos = pos;
        return any !== 0;
      }
    }
    throw badEnvelope(`varint longer than 10 bytes at byte ${String(start)}`);
  }

  /** Reads a length prefix and returns where the value it announces ends. */
  limit(end: number): number {
    const start = this.pos;
    const len = this.uint32(end);
    if (len > end - this.pos) {
      throw badEnvelope(`length ${String(len)} at byte ${String(start)} runs past the end of its message`);
    }
    return this.pos + len;
  }

  /** Reads a string, refusing invalid UTF-8. */
  string(end: number, field: string): string {
    const stop = this.limit(end);
    const start = this.pos;
    this.pos = stop;
    const len = stop - start;
    if (len === 0) return "";
    const buf = this.buf;
    if (len <= ASCII_FAST_MAX) {
      let s = "";
      let i = start;
      for (; i < stop; i++) {
        const c = buf[i]!;
        if (c > 0x7f) break;
        s += String.fromCharCode(c);
      }
      if (i === stop) return s;
    }
    const slot = len > ASCII_FAST_MAX && len <= CACHE_MAX ? cacheSlot(buf, start, stop) : -1;
    if (slot >= 0) {
      const hit = cached(buf, start, stop, slot);
      if (hit !== undefined) return hit;
    }
    let text: string;
    try {
      text = utf8.decode(buf.subarray(start, stop));
    } catch (e) {
      throw badEnvelope(`${field} is not valid UTF-8`, e);
    }
    if (slot >= 0) {
      // A copy, never a view: the input may be reused by its owner, and Node's Buffer.slice
      // returns a view. It also keeps a large input from being retained by a short string.
      const copy = new Uint8Array(len);
      for (let i = 0; i < len; i++) copy[i] = buf[start + i]!;
      cachedBytes[slot] = copy;
      cachedText[slot] = text;
    }
    return text;
  }

  /**
   * Reads a bytes field as a view into the input, without copying. The view shares memory with
   * the decoded buffer, so a caller that reuses that buffer must copy the payload first.
   */
  bytes(end: number): Uint8Array {
    const stop = this.limit(end);
    const start = this.pos;
    this.pos = stop;
    return this.buf.subarray(start, stop);
  }

  /** Throws unless a repeated field with `count` entries may take one more. */
  checkCount(count: number, field: string): void {
    if (count >= this.maxRepeated) throw tooManyEntries(field, this.maxRepeated);
  }

  /**
   * Skips a field the message does not define. `declared` says the message does define the
   * field number, so the tag that reached here carries the wrong wire type. Groups (wire types
   * 3 and 4) never occur in v1 envelopes and are refused rather than skipped, which also
   * removes the nesting that skipping them would need.
   */
  skip(tag: number, end: number, message: string, declared: boolean): void {
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (declared) {
      throw badEnvelope(`${message} field ${String(field)} has the wrong wire type ${String(wireType)}`);
    }
    switch (wireType) {
      case VARINT:
        this.bool(end);
        return;
      case I64:
        this.advance(8, end);
        return;
      case LEN:
        this.pos = this.limit(end);
        return;
      case I32:
        this.advance(4, end);
        return;
      case SGROUP:
      case EGROUP:
        throw badEnvelope(`group (wire type ${String(wireType)}) in ${message} field ${String(field)}`);
      default:
        throw badEnvelope(`invalid wire type ${String(wireType)} in ${message} field ${String(field)}`);
    }
  }

  private advance(n: number, end: number): void {
    if (n > end - this.pos) throw this.truncated(this.pos);
    this.pos += n;
  }

  private truncated(at: number): Error {
    return badEnvelope(`truncated value at byte ${String(at)}`);
  }
}
