import { protoInt64 } from "@bufbuild/protobuf";
import { unencodablePayload } from "./payload-errors.js";
import type { UnknownField } from "./payload-reader.js";

// Generated encoders run in two passes over a message: `size$X` measures it and records, in
// visiting order, the length of every length-delimited value whose length is not obvious
// (nested messages, strings, packed lists, map entries); `write$X` then writes into a buffer of
// exactly that size, taking each recorded length as it meets the value again. No fork/join,
// no copying of the body to fix up a length prefix.

/** Bytes of a uint32 varint. */
export function sizeVarint(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Bytes of an int32 varint: negative values are sign-extended to 10 bytes. */
export function sizeInt32(n: number): number {
  return n < 0 ? 10 : sizeVarint(n);
}

export function sizeSint32(n: number): number {
  return sizeVarint(((n << 1) ^ (n >> 31)) >>> 0);
}

/** Bytes of the UTF-8 encoding TextEncoder produces (a lone surrogate becomes U+FFFD, 3 bytes). */
export function sizeUtf8(s: string): number {
  const len = s.length;
  let n = len;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < len && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair: two UTF-16 units, four bytes.
      n += 2;
      i++;
    } else n += 2;
  }
  return n;
}

/** Low and high 32 bits of the last value split64 took apart; module state avoids an object per value. */
export let lo64 = 0;
export let hi64 = 0;

/**
 * Splits a 64-bit field value (bigint, decimal string or number, as protobuf-es accepts them)
 * into lo64 and hi64, with protobuf-es's range checks.
 */
export function split64(value: unknown, signed: boolean, field: string): void {
  if (typeof value === "bigint" && value >= 0n && value <= 0x7fffffffn) {
    lo64 = Number(value);
    hi64 = 0;
    return;
  }
  try {
    const parts = signed ? protoInt64.enc(value as bigint) : protoInt64.uEnc(value as bigint);
    lo64 = parts.lo;
    hi64 = parts.hi;
  } catch (e) {
    throw unencodablePayload(field, `${String(value)} is not a valid ${signed ? "int64" : "uint64"}`, e);
  }
}

/** Bytes of the varint of the value split64 took apart last. */
export function sizeVarint64(): number {
  if (hi64 === 0) return sizeVarint(lo64 >>> 0);
  const hi = hi64 >>> 0;
  // 4 bytes carry 28 bits; the high word starts in the fifth byte at bit 3.
  return hi < 0x08 ? 5 : hi < 0x400 ? 6 : hi < 0x20000 ? 7 : hi < 0x1000000 ? 8 : hi < 0x80000000 ? 9 : 10;
}

export function sizeInt64(value: unknown, field: string): number {
  split64(value, true, field);
  return sizeVarint64();
}

export function sizeUint64(value: unknown, field: string): number {
  split64(value, false, field);
  return sizeVarint64();
}

export function sizeSint64(value: unknown, field: string): number {
  split64(value, true, field);
  zigzag64();
  return sizeVarint64();
}

/** Zigzag-encodes lo64 and hi64 in place. */
export function zigzag64(): void {
  const sign = hi64 >> 31;
  const lo = (lo64 << 1) ^ sign;
  hi64 = ((hi64 << 1) | (lo64 >>> 31)) ^ sign;
  lo64 = lo;
}

/** Bytes of the unknown fields protobuf-es writes back after the declared ones. */
export function sizeUnknown(fields: readonly UnknownField[]): number {
  let n = 0;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    n += sizeVarint(f.no * 8 + f.wireType) + f.data.byteLength;
  }
  return n;
}

/** A bytes value as create() keeps it: arrays of numbers become a Uint8Array. */
export function toBytes(value: Uint8Array | readonly number[]): Uint8Array {
  return Array.isArray(value) ? new Uint8Array(value) : (value as Uint8Array);
}
