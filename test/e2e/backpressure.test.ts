import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Frame } from "../../runtime/wire/envelope.js";
import { startHarness, until, type Harness } from "../support/harness.js";

const TOTAL = 1_000;
// 1,000 of these (16 MB) overflow the kernel's socket buffers (several MiB on loopback) and
// the server's 1 MiB mark three times over: the stalled reader is cut after about 5 MB.
const TEXT = "x".repeat(16_000);

/** A raw client that subscribes to a channel and then stops reading its socket. */
async function stalledReader(url: string, method: string, channel: string): Promise<WebSocket> {
  const ws = new WebSocket(url, ["protocast.v1"]);
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const send = (seq: number, frame: Frame) => ws.send(encodeEnvelope({ seq, ackSeq: 0, frame }));
  const subscribed = new Promise<void>((resolve) => {
    const onMessage = (data: Buffer): void => {
      if (decodeEnvelope(data).frame.case !== "subscribed") return;
      ws.off("message", onMessage);
      resolve();
    };
    ws.on("message", onMessage);
  });
  send(0, { case: "hello", value: { version: 1, client: "stalled" } });
  send(1, { case: "subscribe", value: { id: 1, method, channel, recover: false, epoch: "", offset: 0 } });
  await subscribed;
  (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  return ws;
}

describe("back-pressure", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({}, (s) => s.implement(ChatService, { sendMessage: () => ({}), listRooms: () => ({ rooms: [] }) }));
  });
  afterAll(() => h.close());

  it("cuts a reader that stopped reading an at-least-once channel at the bound; the others get all 1,000", async () => {
    const room = { roomId: "bp" };
    const readers = Array.from({ length: 3 }, () => createClient(ChatService, h.client()).roomEvents(room));
    await Promise.all(readers.map((r) => r.ready));
    const stalled = await stalledReader(h.url, ChatService.channels.roomEvents.path, "room/bp");
    const counts = readers.map(() => 0);
    const inOrder = readers.map(() => true);
    // Readers wake the publisher on every event: no polling.
    let wake: (() => void) | undefined;
    const progress = (): Promise<void> => new Promise((resolve) => (wake = resolve));
    const reading = readers.map(async (sub, i) => {
      for await (const ev of sub) {
        if (ev.messageId !== String(counts[i])) inOrder[i] = false;
        counts[i]!++;
        wake?.();
        if (counts[i] === TOTAL) break;
      }
    });
    // The readers share this process with the server: the publisher waits for them to stay
    // within 20 events (320 KB, well under the 1 MiB mark), so only the stalled reader is ever behind.
    for (let i = 0; i < TOTAL; i++) {
      while (Math.min(...counts) < i - 20) await progress();
      void h.server.publish(ChatService.channels.roomEvents, room, { messageId: String(i), text: TEXT });
    }
    await Promise.all(reading);
    expect(counts).toEqual([TOTAL, TOTAL, TOTAL]);
    expect(inOrder).toEqual([true, true, true]);
    const stats = h.server.stats();
    expect(stats.counters.drops["disconnect"]).toBe(1);
    // The peer never reads the close frame; the server drops the link after its close timeout.
    await until(() => (h.server.stats().counters.closeCodes["1006"] ?? 0) >= 1, "the stalled link to be dropped", 5_000);
    stalled.terminate();
  });

  it("conflates an at-most-once channel for a slow reader and drops, never queues without bound", async () => {
    const stalled = await stalledReader(h.url, ChatService.channels.typing.path, "typing/bp");
    const before = h.server.stats().counters.drops["conflate"] ?? 0;
    for (let i = 0; i < TOTAL; i++) {
      void h.server.publish(ChatService.channels.typing, { roomId: "bp" }, { user: `user${i % 10}-${TEXT}`, typing: i % 2 === 0 });
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => (h.server.stats().counters.drops["conflate"] ?? 0) > before, "conflation to happen");
    // The connection survives: at-most-once traffic never costs the reader its connection.
    expect(stalled.readyState).toBe(WebSocket.OPEN);
    stalled.terminate();
  });
});
