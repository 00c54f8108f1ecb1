import { allocate } from "../wire/allocate.js";
import { unencodablePayload } from "./payload-errors.js";
import type { UnknownField } from "./payload-reader.js";
import { hi64, lo64, split64, zigzag64 } from "./payload-size.js";

let encoder: TextEncoder | undefined;

/**
 * Writes the protobuf wire format into a buffer of the exact size a generated `size$X`
 * measured (see payload-size.ts). Values are checked as protobuf-es's BinaryWriter checks
 * them, so that an encoder throws where toBinary throws instead of writing something else.
 */
export class PayloadWriter {
  readonly buf: Uint8Array;
  pos = 0;
  private next = 0;
  private view: DataView | undefined;

  constructor(
    size: number,
    /** Lengths the size pass recorded, in visiting order. */
    private readonly lengths: readonly number[],
  ) {
    // Mid-sized outputs are views into a shared block: a typed array of its own costs more
    // than encoding a small message (see wire/allocate.ts).
    this.buf = allocate(size);
  }

  /** The next length the size pass recorded. */
  length(): number {
    return this.lengths[this.next++]!;
  }

  /** Writes a length prefix the size pass recorded and returns it. */
  prefix(): number {
    const n = this.lengths[this.next++]!;
    this.uint32(n);
    return n;
  }

  /** A varint of a number in 0..2^32-1 (tags, lengths, uint32 values). */
  uint32(n: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (n > 0x7f) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n = n >>> 7;
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  checkedUint32(n: number, field: string): void {
    if (n >>> 0 !== n) throw unencodablePayload(field, `${String(n)} is not a uint32`);
    this.uint32(n);
  }

  int32(n: number, field: string): void {
    if ((n | 0) !== n) throw unencodablePayload(field, `${String(n)} is not an int32`);
    if (n >= 0) this.uint32(n);
    else this.varint64(n, -1);
  }

  sint32(n: number, field: string): void {
    if ((n | 0) !== n) throw unencodablePayload(field, `${String(n)} is not an int32`);
    this.uint32(((n << 1) ^ (n >> 31)) >>> 0);
  }

  /** Truthiness, as protobuf-es writes it: a map key that is not "true" or "false" counts too. */
  bool(value: unknown): void {
    this.buf[this.pos++] = value ? 1 : 0;
  }

  int64(value: unknown, field: string): void {
    split64(value, true, field);
    this.varint64(lo64, hi64);
  }

  uint64(value: unknown, field: string): void {
    split64(value, false, field);
    this.varint64(lo64, hi64);
  }

  sint64(value: unknown, field: string): void {
    split64(value, true, field);
    zigzag64();
    this.varint64(lo64, hi64);
  }

  fixed32(n: number, field: string): void {
    if (n >>> 0 !== n) throw unencodablePayload(field, `${String(n)} is not a uint32`);
    this.word(n);
  }

  sfixed32(n: number, field: string): void {
    if ((n | 0) !== n) throw unencodablePayload(field, `${String(n)} is not an int32`);
    this.word(n);
  }

  fixed64(value: unknown, field: string): void {
    split64(value, false, field);
    this.word(lo64);
    this.word(hi64);
  }

  sfixed64(value: unknown, field: string): void {
    split64(value, true, field);
    this.word(lo64);
    this.word(hi64);
  }

  float(n: number, field: string): void {
    if (typeof n !== "number") throw unencodablePayload(field, `${typeof n} is not a float`);
    // A finite value beyond float32's range would silently become infinity.
    if (Number.isFinite(n) && !Number.isFinite(Math.fround(n))) throw unencodablePayload(field, `${String(n)} is out of float32 range`);
    this.dataView().setFloat32(this.pos, n, true);
    this.pos += 4;
  }

  double(n: number, field: string): void {
    if (typeof n !== "number") throw unencodablePayload(field, `${typeof n} is not a double`);
    this.dataView().setFloat64(this.pos, n, true);
    this.pos += 8;
  }

  /** Length prefix and bytes. */
  bytes(value: Uint8Array): void {
    this.uint32(value.byteLength);
    this.buf.set(value, this.pos);
    this.pos += value.byteLength;
  }

  /** Length prefix (recorded by the size pass) and UTF-8 text. */
  string(value: string): void {
    const n = this.prefix();
    const buf = this.buf;
    const pos = this.pos;
    if (n === value.length && n <= 64) {
      // As many bytes as UTF-16 units: the text is ASCII.
      for (let i = 0; i < n; i++) buf[pos + i] = value.charCodeAt(i);
    } else {
      (encoder ??= new TextEncoder()).encodeInto(value, buf.subarray(pos, pos + n));
    }
    this.pos = pos + n;
  }

  /** Unknown fields kept by a decoder, written back as they came. */
  unknown(fields: readonly UnknownField[]): void {
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      this.uint32(f.no * 8 + f.wireType);
      this.buf.set(f.data, this.pos);
      this.pos += f.data.byteLength;
    }
  }

  private word(n: number): void {
    const buf = this.buf;
    const pos = this.pos;
    buf[pos] = n;
    buf[pos + 1] = n >>> 8;
    buf[pos + 2] = n >>> 16;
    buf[pos + 3] = n >>> 24;
    this.pos = pos + 4;
  }

  private varint64(lo: number, hi: number): void {
    const buf = this.buf;
    let pos = this.pos;
    lo = lo >>> 0;
    hi = hi >>> 0;
    while (hi > 0 || lo > 0x7f) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi = hi >>> 7;
    }
    buf[pos++] = lo;
    this.pos = pos;
  }

  private dataView(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }
}
