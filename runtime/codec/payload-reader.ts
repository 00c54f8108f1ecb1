import { protoInt64 } from "@bufbuild/protobuf";
import type { PayloadLimits } from "./message-codec.js";
import { badPayload, payloadLimit } from "./payload-errors.js";

/** One field the message does not declare, kept as protobuf-es keeps it in `$unknown`. */
export interface UnknownField {
  no: number;
  wireType: number;
  data: Uint8Array;
}

// Strings up to this length are assembled from char codes when they are ASCII: below it a
// TextDecoder call costs more than the loop.
const ASCII_LOOP_MAX = 32;

let strictDecoder: TextDecoder | undefined;
let lenientDecoder: TextDecoder | undefined;

/**
 * Reads the protobuf wire format for generated payload decoders. Unlike protobuf-es's
 * BinaryReader it checks every read against the buffer and throws only ProtocastErrors, and
 * it refuses what protobuf-es lets through silently (a field overrunning its message, a known
 * field with the wrong wire type), so a decoder never returns garbage for a damaged payload.
 */
export class PayloadReader {
  pos = 0;
  /** Low and high 32 bits of the last 64-bit varint read. */
  private lo = 0;
  private hi = 0;
  private depth = 0;
  private view: DataView | undefined;

  constructor(
    readonly buf: Uint8Array,
    /** Type name of the outermost message, for error messages. */
    readonly typeName: string,
    private readonly limits: PayloadLimits,
  ) {}

  /** Starts a message; `end` is where it must end. */
  enter(): void {
    if (++this.depth > this.limits.maxDepth) throw payloadLimit(this.typeName, "maxDepth", this.limits.maxDepth);
  }

  /** Ends a message, which must have ended exactly at `end`. */
  leave(end: number): void {
    this.done(end);
    this.depth--;
  }

  /** Checks that a length-delimited value (message, packed list, map entry) ended at `end`. */
  done(end: number): void {
    if (this.pos !== end) this.fail(`a value overruns its length at byte ${String(end)}`);
  }

  /**
   * Skips a field of a map entry other than key (1) and value (2), as protobuf-es does; a key
   * or value with a wire type its declared type does not use is an error.
   */
  skipEntryField(tag: number): void {
    const no = tag >>> 3;
    if (no === 1 || no === 2) this.fail(`map entry field ${String(no)} has wire type ${String(tag & 7)}, which its declared type does not use`);
    this.skip(tag & 7, no, this.limits.maxDepth - this.depth);
  }

  /** Stores a map entry; a "__proto__" key becomes an own property, as protobuf-es's setOwn makes it. */
  entry(record: Record<string, unknown>, key: string | number | boolean | bigint, value: unknown): void {
    if (key === "__proto__") Object.defineProperty(record, key, { value, writable: true, enumerable: true, configurable: true });
    else record[String(key)] = value;
  }

  /** A tag as `field number * 8 + wire type`, so that a decoder can switch on both at once. */
  tag(): number {
    const start = this.pos;
    const t = this.uint32();
    const read = this.pos - start;
    // A tag is a uint32: a fifth byte may carry only its top 4 bits.
    if (read > 5 || (read === 5 && this.buf[this.pos - 1]! > 0x0f) || t < 8 || (t & 7) > 5) this.fail(`illegal tag ${String(t)} at byte ${String(start)}`);
    return t;
  }

  /** The end of the length-delimited value that starts here, checked against the buffer. */
  len(): number {
    const n = this.uint32();
    if (n > this.buf.length - this.pos) this.fail(`length ${String(n)} at byte ${String(this.pos)} runs past the end (${String(this.buf.length)} bytes)`);
    return this.pos + n;
  }

  /** Throws unless `list` may take one more entry. */
  more(count: number): void {
    if (count >= this.limits.maxRepeated) throw payloadLimit(this.typeName, "maxRepeated", this.limits.maxRepeated);
  }

  /** A varint as uint32: the low 32 bits of up to 10 bytes, as protobuf-es reads it. */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos < buf.length) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let result = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const b = this.byteAt(pos++);
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    let b = this.byteAt(pos++);
    result |= (b & 0x0f) << 28;
    // Bytes 6 to 10 of a sign-extended int32 carry nothing a uint32 keeps.
    for (let n = 5; b >= 0x80; n++) {
      if (n === 10) this.fail(`varint longer than 10 bytes at byte ${String(this.pos)}`);
      b = this.byteAt(pos++);
    }
    this.pos = pos;
    return result >>> 0;
  }

  int32(): number {
    return this.uint32() | 0;
  }

  sint32(): number {
    const n = this.uint32();
    return (n >>> 1) ^ -(n & 1);
  }

  bool(): boolean {
    this.varint64();
    return this.lo !== 0 || this.hi !== 0;
  }

  int64(): bigint | string {
    this.varint64();
    return this.hi === 0 && this.lo >= 0 && protoInt64.supported ? BigInt(this.lo) : protoInt64.dec(this.lo, this.hi);
  }

  uint64(): bigint | string {
    this.varint64();
    return this.hi === 0 && this.lo >= 0 && protoInt64.supported ? BigInt(this.lo) : protoInt64.uDec(this.lo, this.hi);
  }

  sint64(): bigint | string {
    this.varint64();
    const sign = -(this.lo & 1);
    return protoInt64.dec(((this.lo >>> 1) | ((this.hi & 1) << 31)) ^ sign, (this.hi >>> 1) ^ sign);
  }

  fixed32(): number {
    return this.sfixed32() >>> 0;
  }

  sfixed32(): number {
    const p = this.advance(4);
    const buf = this.buf;
    return buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24);
  }

  fixed64(): bigint | string {
    const lo = this.sfixed32();
    return protoInt64.uDec(lo, this.sfixed32());
  }

  sfixed64(): bigint | string {
    const lo = this.sfixed32();
    return protoInt64.dec(lo, this.sfixed32());
  }

  float(): number {
    return this.dataView().getFloat32(this.advance(4), true);
  }

  double(): number {
    return this.dataView().getFloat64(this.advance(8), true);
  }

  /** A view into the buffer, not a copy, as protobuf-es returns. */
  bytes(): Uint8Array {
    const end = this.len();
    const start = this.pos;
    this.pos = end;
    return this.buf.subarray(start, end);
  }

  /** UTF-8 text; with `strict`, invalid UTF-8 is an error instead of U+FFFD. */
  string(strict: boolean): string {
    const end = this.len();
    const start = this.pos;
    const buf = this.buf;
    this.pos = end;
    if (end - start <= ASCII_LOOP_MAX) {
      let s = "";
      let i = start;
      for (; i < end; i++) {
        const c = buf[i]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) return s;
    }
    const bytes = buf.subarray(start, end);
    if (!strict) return (lenientDecoder ??= new TextDecoder("utf-8", { ignoreBOM: true })).decode(bytes);
    try {
      return (strictDecoder ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })).decode(bytes);
    } catch (e) {
      return this.fail(`invalid UTF-8 in a string at byte ${String(start)}`, e);
    }
  }

  /**
   * Skips the value of an undeclared field and keeps it in `message.$unknown` as protobuf-es
   * does; throws when the field number is declared but came with another wire type.
   */
  unknown(message: { $unknown?: UnknownField[] }, tag: number, declared: boolean): void {
    const no = tag >>> 3;
    const wireType = tag & 7;
    if (declared) this.fail(`field ${String(no)} has wire type ${String(wireType)}, which its declared type does not use`);
    const start = this.pos;
    this.skip(wireType, no, this.limits.maxDepth - this.depth);
    const list = (message.$unknown ??= []);
    this.more(list.length);
    list.push({ no, wireType, data: this.buf.subarray(start, this.pos) });
  }

  private skip(wireType: number, no: number, budget: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.pos = this.len();
        return;
      case 5:
        this.advance(4);
        return;
      case 3:
        // A group's nesting spends what is left of the depth budget, as in protobuf-es.
        if (budget <= 0) throw payloadLimit(this.typeName, "maxDepth", this.limits.maxDepth);
        for (;;) {
          const t = this.tag();
          if ((t & 7) === 4) {
            if (t >>> 3 !== no) this.fail(`group ${String(no)} ends with the end tag of ${String(t >>> 3)}`);
            return;
          }
          this.skip(t & 7, t >>> 3, budget - 1);
        }
      default:
        this.fail(`unexpected end-group tag of field ${String(no)}`);
    }
  }

  /** Reads a varint of up to 10 bytes into lo and hi. */
  private varint64(): void {
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      b = this.byteAt(pos++);
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.finish64(pos, lo, hi);
        return;
      }
    }
    b = this.byteAt(pos++);
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x70) >> 4;
    for (let shift = 3; b >= 0x80; shift += 7) {
      if (shift > 31) this.fail(`varint longer than 10 bytes at byte ${String(this.pos)}`);
      b = this.byteAt(pos++);
      hi |= (b & 0x7f) << shift;
    }
    this.finish64(pos, lo, hi);
  }

  private finish64(pos: number, lo: number, hi: number): void {
    this.pos = pos;
    this.lo = lo;
    this.hi = hi;
  }

  private byteAt(pos: number): number {
    if (pos >= this.buf.length) this.fail(`truncated: a varint runs past the end (${String(this.buf.length)} bytes)`);
    return this.buf[pos]!;
  }

  /** Moves past n bytes and returns where they start. */
  private advance(n: number): number {
    const p = this.pos;
    if (n > this.buf.length - p) this.fail(`truncated: ${String(n)} bytes needed at byte ${String(p)}, ${String(this.buf.length - p)} left`);
    this.pos = p + n;
    return p;
  }

  private dataView(): DataView {
    return (this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  private fail(detail: string, cause?: unknown): never {
    throw badPayload(this.typeName, detail, cause);
  }
}
