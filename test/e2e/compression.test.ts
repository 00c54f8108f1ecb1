// permessage-deflate between the server and the Node client: large channel events arrive
// intact and take a fraction of the bytes; a server without compression sends them as they are.
import { afterEach, describe, expect, it } from "vitest";
import { connect, createClient, type Connection } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { EVENTS, PATTERN, REPEAT, compressionServer } from "../support/compression-server.js";

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function exchange(compression: boolean, readers: number): Promise<{ bytes: number; received: number[]; correct: boolean }> {
  const { server, bytesWritten } = compressionServer({ compression });
  const { port } = await server.listen(0, "127.0.0.1");
  closers.push(() => server.close({ deadlineMs: 0 }));
  const conns: Connection[] = [];
  const received: number[] = [];
  let correct = true;
  const readingDone: Promise<void>[] = [];
  for (let r = 0; r < readers; r++) {
    const conn = connect(`ws://127.0.0.1:${port}/protocast`, { token: `reader${r}` });
    conns.push(conn);
    closers.push(() => conn.close());
    const sub = createClient(ChatService, conn).roomEvents({ roomId: "big" });
    await sub.ready;
    received.push(0);
    readingDone.push(
      (async () => {
        for await (const ev of sub) {
          if (ev.text !== `${received[r]}:${PATTERN.repeat(REPEAT)}`) correct = false;
          if (++received[r]! >= EVENTS) break;
        }
      })(),
    );
  }
  const before = bytesWritten();
  await createClient(ChatService, conns[0]!).sendMessage({ roomId: "big", text: PATTERN });
  await Promise.all(readingDone);
  return { bytes: bytesWritten() - before, received, correct };
}

describe("permessage-deflate", () => {
  it("large events arrive intact in a fraction of the bytes, compressed once for every reader", async () => {
    const plain = await exchange(false, 3);
    const deflated = await exchange(true, 3);
    expect(plain.correct && deflated.correct).toBe(true);
    expect(deflated.received).toEqual([EVENTS, EVENTS, EVENTS]);
    const raw = 3 * EVENTS * PATTERN.length * REPEAT;
    console.log(`3 readers x ${EVENTS} events of ${PATTERN.length * REPEAT} bytes: ${plain.bytes} bytes uncompressed, ${deflated.bytes} compressed (${(plain.bytes / deflated.bytes).toFixed(1)}x)`);
    expect(plain.bytes).toBeGreaterThan(raw);
    expect(deflated.bytes).toBeLessThan(plain.bytes / 5);
  });

  it("calls with large requests and replies work over a compressing connection", async () => {
    const { server } = compressionServer({ compression: { threshold: 64, level: 1 } });
    const { port } = await server.listen(0, "127.0.0.1");
    closers.push(() => server.close({ deadlineMs: 0 }));
    const conn = connect(`ws://127.0.0.1:${port}/protocast`, { token: "caller" });
    closers.push(() => conn.close());
    const reply = await createClient(ChatService, conn).sendMessage({ roomId: "elsewhere", text: "x".repeat(20_000) });
    expect(reply.messageId).toBe("published");
  });
});
