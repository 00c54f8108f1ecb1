import * as wsModule from "ws";

/*
 * The client half of the WebSocket framing that the bench clients need, and no more. Framing
 * of what they send is ws's own (Sender.frame); reading is a header scanner that counts the
 * broadcast frames without copying or decoding them, so that one client process can keep up
 * with thousands of connections and the server stays the bottleneck being measured.
 */

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}

// @types/ws does not declare Sender; ws exports it all the same.
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

export const OPCODE_TEXT = 1;
export const OPCODE_BINARY = 2;
export const OPCODE_CLOSE = 8;

/** A masked client frame holding `data` (copied: ws masks in place). */
export function clientFrame(data: Uint8Array | string, opcode: number): Buffer {
  const copy = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
  return Buffer.concat(Sender.frame(copy, { fin: true, opcode, mask: true, readOnly: false, rsv1: false }));
}

/**
 * An unmasked server frame holding `data`: what a server writes once and sends to many.
 * `compressed`: `data` is a permessage-deflate message, marked by the RSV1 bit.
 */
export function serverFrame(data: Buffer, opcode: number, compressed = false): Buffer {
  return Buffer.concat(Sender.frame(data, { fin: true, opcode, mask: false, readOnly: true, rsv1: compressed }));
}

/**
 * Decides from the first payload bytes whether a frame is a broadcast event. Events are
 * counted and skipped; anything else is handed over whole.
 */
export type IsEvent = (opcode: number, buf: Buffer, at: number, length: number) => boolean;

export interface FrameSink {
  event(): void;
  /** A whole frame that is not a counted event; `compressed` when RSV1 is set (permessage-deflate). */
  message(opcode: number, payload: Buffer, compressed: boolean): void;
}

/** Reads server frames from a byte stream; frames may be split anywhere across chunks. */
export class FrameReader {
  /** Start of a frame that did not fit in the last chunk. */
  private rest: Buffer | undefined;
  /** Bytes of an already counted event that are still to come. */
  private skip = 0;

  constructor(
    private readonly isEvent: IsEvent,
    private readonly sink: FrameSink,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    if (this.skip > 0) {
      if (this.skip >= buf.length) {
        this.skip -= buf.length;
        return;
      }
      pos = this.skip;
      this.skip = 0;
    }
    if (this.rest !== undefined) {
      buf = Buffer.concat([this.rest, buf.subarray(pos)]);
      pos = 0;
      this.rest = undefined;
    }
    const end = buf.length;
    while (end - pos >= 2) {
      const b1 = buf[pos + 1]!;
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (end - pos < 4) break;
        length = buf.readUInt16BE(pos + 2);
        header = 4;
      } else if (length === 127) {
        if (end - pos < 10) break;
        length = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
        header = 10;
      }
      if ((b1 & 0x80) !== 0) header += 4; // servers do not mask, but skip a mask key if present
      const start = pos + header;
      const available = end - start;
      if (available < 0) break;
      const opcode = buf[pos]! & 0x0f;
      // A compressed frame's first bytes are DEFLATE data: it is handed over whole, to inflate.
      const compressed = (buf[pos]! & 0x40) !== 0;
      if (!compressed && available >= Math.min(length, 2) && this.isEvent(opcode, buf, start, length)) {
        this.sink.event();
        if (available < length) {
          this.skip = length - available;
          return;
        }
        pos = start + length;
        continue;
      }
      if (available < length) break;
      this.sink.message(opcode, buf.subarray(start, start + length), compressed);
      pos = start + length;
    }
    // Copy the tail so that a large chunk is not kept alive for a few bytes.
    if (pos < end) this.rest = Buffer.from(buf.subarray(pos));
  }
}
