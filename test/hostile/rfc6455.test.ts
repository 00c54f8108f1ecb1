/**
 * Frames that break RFC 6455 or protocast.v1's use of it, written by hand on a raw socket
 * after a valid Hello. Each must be answered by the close code PROTOCOL.md sections 2.7 and
 * 11.3 give, with the server still serving a normal client afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import { until, type Harness } from "../support/harness.js";
import { normalClientWorks, startChat } from "./chat-server.js";
import { openSession } from "./raw-session.js";
import { buildFrame, Opcode, type Ending } from "./raw-ws.js";

const MAX = 65_536;
const ping = encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "ping", value: { sentAtMs: 1 } } });

describe("frames that break RFC 6455", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startChat({ authenticate: () => ({ id: "raw", scopes: ["*"] }) });
  });
  afterEach(() => normalClientWorks(h));
  afterAll(() => h.close());

  /** Opens a session, sends `bytes` as they are, and returns how the server ended it. */
  async function send(...bytes: Buffer[]): Promise<Ending> {
    const s = await openSession(h.port);
    for (const b of bytes) s.raw.send(b);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("server did not close the connection")), 5_000));
    return Promise.race([s.raw.ended, timeout]);
  }

  it("closes with 1007 on a text frame that is not UTF-8", async () => {
    const end = await send(buildFrame({ opcode: Opcode.Text, payload: Uint8Array.from([0x68, 0xc3, 0x28, 0xff, 0xfe]) }));
    expect(end.code).toBe(1007);
  });

  it("closes with 1007 on a close frame whose reason is not UTF-8", async () => {
    const end = await send(buildFrame({ opcode: Opcode.Close, payload: Uint8Array.from([0x03, 0xe8, 0xc0, 0xaf]) }));
    expect(end.code).toBe(1007);
  });

  it("closes with 1002 on an unmasked client frame", async () => {
    const end = await send(buildFrame({ opcode: Opcode.Binary, payload: ping, mask: false }));
    expect(end.code).toBe(1002);
  });

  it.each([4, 2, 1])("closes with 1002 when reserved bits %i are set", async (rsv) => {
    const end = await send(buildFrame({ opcode: Opcode.Binary, payload: ping, rsv }));
    expect(end.code).toBe(1002);
  });

  it.each([0x3, 0x7, 0xb, 0xf])("closes with 1002 on reserved opcode %i", async (opcode) => {
    const end = await send(buildFrame({ opcode, payload: ping }));
    expect(end.code).toBe(1002);
  });

  it("closes with 1002 on a fragmented control frame and on a close code that may not be sent", async () => {
    expect((await send(buildFrame({ opcode: Opcode.Ping, payload: Uint8Array.of(1), fin: false }))).code).toBe(1002);
    expect((await send(buildFrame({ opcode: Opcode.Close, payload: Uint8Array.from([0x03, 0xed]) }))).code).toBe(1002); // 1005
  });

  it("closes with 1009 on a message one byte over maxPayload", async () => {
    const end = await send(buildFrame({ opcode: Opcode.Binary, payload: new Uint8Array(MAX + 1) }));
    expect(end.code).toBe(1009);
  });

  it("closes with 1009 on the header alone when the declared length is over the limit, before any payload", async () => {
    // Only the 14-byte header is sent: the answer must not wait for (or buffer) the payload.
    const header = buildFrame({ opcode: Opcode.Binary, declaredLength: BigInt(MAX + 1) });
    const end = await send(header);
    expect(end.code).toBe(1009);
  });

  it.each([2n ** 32n, 2n ** 53n - 1n, 2n ** 63n - 1n])("closes with 1009 on a declared 64-bit length of %s", async (declaredLength) => {
    const end = await send(buildFrame({ opcode: Opcode.Binary, declaredLength }));
    expect(end.code).toBe(1009);
  });

  it("closes with 1009 when fragments add up to more than maxPayload", async () => {
    const half = new Uint8Array(MAX / 2 + 1);
    const end = await send(buildFrame({ opcode: Opcode.Binary, payload: half, fin: false }), buildFrame({ opcode: Opcode.Continuation, payload: half }));
    expect(end.code).toBe(1009);
  });

  it("closes with 1003 on any text frame: protocast.v1 is binary only", async () => {
    const end = await send(buildFrame({ opcode: Opcode.Text, payload: new TextEncoder().encode("hello") }));
    expect(end.code).toBe(1003);
  });

  /*
   * Fragment floods. ws (8.23) counts the fragments of one message and, past `maxFragments`
   * (16,384 by default in WebSocketServer; Protocast's server does not set it), closes with
   * 1008 "Too many message fragments". Empty fragments are counted too but never stored, so
   * a flood of them costs CPU only. With 1-byte fragments the count trips long before the
   * 64 KiB size limit would (16,384 bytes). PROTOCOL.md 11.3 lists 1008 for this case.
   */
  it.each([
    ["1-byte", 1],
    ["empty", 0],
  ])("closes a flood of 40,000 %s continuation frames at ws's fragment limit, memory bounded", async (_name, size) => {
    const fragment = buildFrame({ opcode: Opcode.Continuation, payload: new Uint8Array(size), fin: false });
    const flood = Buffer.concat(Array.from({ length: 40_000 }, () => fragment) as Uint8Array[]);
    const before = process.memoryUsage();
    const end = await send(buildFrame({ opcode: Opcode.Binary, payload: Uint8Array.of(0), fin: false }), flood);
    const after = process.memoryUsage();
    console.log(`${_name} fragment flood: closed with ${String(end.code)} (${end.reason}); heap +${((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)} MiB, RSS +${((after.rss - before.rss) / 2 ** 20).toFixed(1)} MiB`);
    expect(end.code).toBe(1008);
    expect(after.rss - before.rss).toBeLessThan(64 * 2 ** 20);
  });

  /*
   * PROTOCOL.md 11.3: after 1002, 1007 and 1009 the session is ended, not kept for a resume.
   * These closes come from ws itself, not from the Protocast core.
   */
  it("ends the session and counts the close under its own code after a WebSocket-layer violation", async () => {
    const cases: [number, Buffer][] = [
      [1002, buildFrame({ opcode: Opcode.Binary, payload: ping, mask: false })],
      [1007, buildFrame({ opcode: Opcode.Text, payload: Uint8Array.of(0xff) })],
      [1009, buildFrame({ opcode: Opcode.Binary, declaredLength: BigInt(MAX + 1) })],
    ];
    const seen: unknown[] = [];
    for (const [code, frame] of cases) {
      await until(() => h.server.stats().connections === 0, "earlier connections to close");
      const before = h.server.stats();
      const counted = { ...before.counters.closeCodes };
      expect((await send(frame)).code).toBe(code);
      // Wait for the close to be counted and the session to end; a leaked session times out here.
      await until(() => {
        const now = h.server.stats();
        return now.counters.closeCodes[String(code)] !== counted[String(code)] && now.sessions <= before.sessions;
      }, `the close to be counted as ${code} and its session to end`);
      const after = h.server.stats();
      const countedAs = Object.keys(after.counters.closeCodes).filter((k) => after.counters.closeCodes[k] !== counted[k]);
      seen.push({ code, sessionsLeft: after.sessions - before.sessions, countedAs });
    }
    expect(seen).toEqual(cases.map(([code]) => ({ code, sessionsLeft: 0, countedAs: [String(code)] })));
  });
});
