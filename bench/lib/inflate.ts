import { constants, inflateRawSync } from "node:zlib";

/*
 * The receiving half of permessage-deflate (RFC 7692) for the bench clients, built so that one
 * client process can read thousands of compressing connections without becoming what is
 * measured.
 *
 * When the server negotiated server_no_context_takeover, a message inflates to the same bytes
 * whatever came before it on its connection: inflation is a function of the frame's bytes
 * alone. Those connections share one memo, so a frame byte-identical to one already inflated
 * gets its output without zlib. A server that compresses a broadcast once and writes the same
 * frame to everyone costs the client one inflation per message; a server whose frames differ
 * from socket to socket costs one per delivery. `inflations` tells which.
 *
 * With context takeover, a message may refer back into what the connection's earlier messages
 * inflated to (up to 32 KiB), so each connection inflates every message itself, from its own
 * window. Node has no synchronous inflater that keeps its state between calls (inflateRawSync
 * starts afresh each time), so the window is handed to zlib as a preset dictionary, which is
 * what such a window is to the decoder.
 */

/** RFC 7692 7.2.2: the sender removed these four bytes of the sync flush; the receiver puts them back. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** The largest LZ77 window permessage-deflate allows (server_max_window_bits 15). */
const WINDOW = 32 * 1024;
/** Frames the memo remembers before it starts afresh; far more than one burst holds. */
const MEMO_LIMIT = 4096;

/** Inflates one connection's compressed messages, in the order they arrive; throws on bad data. */
export type Inflate = (data: Buffer) => Buffer;

/** A hash that spreads different frames; frames with equal hashes are then compared byte for byte. */
function hash(b: Buffer): number {
  const n = b.length;
  if (n < 8) return n;
  return (Math.imul(n, 0x9e3779b1) ^ b.readInt32LE(n - 4) ^ b.readInt32LE(n >> 1)) | 0;
}

/** The inflaters of one client process. */
export class Inflaters {
  /** Messages that went through zlib (the others were recognised byte for byte). */
  inflations = 0;
  private readonly memo = new Map<number, { readonly input: Buffer; readonly output: Buffer }[]>();
  private memoSize = 0;
  private readonly fresh: Inflate = (data) => {
    const key = hash(data);
    const bucket = this.memo.get(key);
    if (bucket !== undefined) {
      for (const known of bucket) if (known.input.equals(data)) return known.output;
    }
    const output = this.run(data, undefined);
    if (++this.memoSize > MEMO_LIMIT) {
      this.memo.clear();
      this.memoSize = 1;
    }
    const entry = { input: Buffer.from(data), output };
    const again = this.memo.get(key);
    if (again === undefined) this.memo.set(key, [entry]);
    else again.push(entry);
    return output;
  };

  /** An inflater for a connection; `contextTakeover` is false when the server negotiated server_no_context_takeover. */
  forConnection(contextTakeover: boolean): Inflate {
    if (!contextTakeover) return this.fresh;
    let window: Buffer | undefined;
    return (data) => {
      const output = this.run(data, window);
      const joined = window === undefined ? output : Buffer.concat([window, output]);
      window = joined.length <= WINDOW ? joined : Buffer.from(joined.subarray(joined.length - WINDOW));
      return output;
    };
  }

  private run(data: Buffer, window: Buffer | undefined): Buffer {
    this.inflations++;
    return inflateRawSync(Buffer.concat([data, TAIL]), {
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(window === undefined ? {} : { dictionary: window }),
    });
  }
}
