/**
 * The bench clients' permessage-deflate reader (bench/lib/inflate.ts) gives back exactly what
 * the server compressed, with and without context takeover, and runs zlib once per distinct
 * frame only where that is sound (no context takeover).
 */
import { constants, createDeflateRaw, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { Inflaters } from "../../bench/lib/inflate.js";
import { marketUpdateBytes } from "../../bench/lib/market-update.js";

/** One message as RFC 7692 frames it: a sync flush with the final 00 00 ff ff removed. */
function withoutTail(b: Buffer): Buffer {
  expect(b.subarray(b.length - 4)).toEqual(Buffer.from([0, 0, 0xff, 0xff]));
  return b.subarray(0, b.length - 4);
}

/** Compresses messages one after the other on one stream, as a sender with context takeover does. */
async function contextTakeover(messages: readonly Buffer[]): Promise<Buffer[]> {
  const deflate = createDeflateRaw({ level: 6 });
  const out: Buffer[] = [];
  for (const m of messages) {
    deflate.write(m);
    await new Promise<void>((resolve) => deflate.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    const parts: Buffer[] = [];
    for (let chunk: Buffer | null = deflate.read() as Buffer | null; chunk !== null; chunk = deflate.read() as Buffer | null) parts.push(chunk);
    out.push(withoutTail(Buffer.concat(parts)));
  }
  deflate.close();
  return out;
}

const fresh = (m: Buffer): Buffer => withoutTail(deflateRawSync(m, { level: 3, finishFlush: constants.Z_SYNC_FLUSH }));

describe("bench inflater", () => {
  const messages = Array.from({ length: 40 }, (_, i) => marketUpdateBytes(i + 1));

  it("inflates a context-takeover stream whose messages refer back to earlier ones", async () => {
    const frames = await contextTakeover(messages);
    // Later updates take a fraction of the first: they reuse what came before.
    expect(frames[10]!.length).toBeLessThan(frames[0]!.length * 0.8);
    const inflaters = new Inflaters();
    const a = inflaters.forConnection(true);
    const b = inflaters.forConnection(true);
    for (let i = 0; i < messages.length; i++) {
      expect(a(frames[i]!).equals(messages[i]!), `message ${i}`).toBe(true);
      expect(b(frames[i]!).equals(messages[i]!), `message ${i}`).toBe(true);
    }
    // Each connection has its own window, so every delivery went through zlib.
    expect(inflaters.inflations).toBe(2 * messages.length);
    // Without the window of the earlier messages, a later frame does not inflate.
    expect(() => inflaters.forConnection(true)(frames[10]!)).toThrow();
  });

  it("inflates each distinct frame once for all connections without context takeover", () => {
    const frames = messages.map(fresh);
    const inflaters = new Inflaters();
    const connections = Array.from({ length: 5 }, () => inflaters.forConnection(false));
    for (let i = 0; i < messages.length; i++) {
      for (const c of connections) expect(c(Buffer.from(frames[i]!)).equals(messages[i]!), `message ${i}`).toBe(true);
    }
    expect(inflaters.inflations).toBe(messages.length);
  });

  it("tells apart frames that differ in one byte", () => {
    const inflaters = new Inflaters();
    const c = inflaters.forConnection(false);
    const m = Buffer.from(messages[0]!);
    const other = Buffer.from(m);
    const at = other.length >> 2;
    other.writeUInt8(other.readUInt8(at) ^ 1, at);
    expect(c(fresh(m)).equals(m)).toBe(true);
    expect(c(fresh(other)).equals(other)).toBe(true);
    expect(inflaters.inflations).toBe(2);
  });

  it("throws on bytes that are not DEFLATE data", () => {
    const c = new Inflaters().forConnection(false);
    expect(() => c(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow();
  });
});
