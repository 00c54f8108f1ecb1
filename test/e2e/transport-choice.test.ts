// The Node client on a slow network keeps to WebSocket: the open timeout grows with the open
// times it has seen, and a WebSocket that worked before is tried again before the fallback.
// Opens are slowed down at the socket's open event, over real connections through a proxy.
import { afterEach, describe, expect, it } from "vitest";
import { connect, nodeWebSocket, type Connection, type WebSocketFactory, type WebSocketLike } from "protocast/node";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

/** `ws` whose open event comes `delay()` ms late, as over a slow or lossy link. */
function slowOpens(delay: () => number): WebSocketFactory {
  return (url, protocols) => {
    const ws = nodeWebSocket(url, protocols);
    const wait = delay();
    return new Proxy(ws, {
      set(target, prop, value: unknown) {
        if (prop === "onopen" && typeof value === "function") {
          (target as { onopen: unknown }).onopen = (ev: unknown) => setTimeout(() => (value as (e: unknown) => void)(ev), wait);
          return true;
        }
        return Reflect.set(target, prop, value);
      },
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as WebSocketLike;
  };
}

let h: Harness | undefined;
let proxy: TcpProxy | undefined;
let conn: Connection | undefined;
afterEach(async () => {
  await conn?.close();
  await proxy?.close();
  await h?.close();
  conn = proxy = h = undefined;
});

describe("transport choice on a slow network", () => {
  it("an open slower than the configured timeout but like the ones seen before stays on WebSocket", async () => {
    h = await startHarness();
    proxy = await startTcpProxy(h.port);
    const delays = [150, 500];
    let n = 0;
    conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, {
      webSocket: slowOpens(() => delays[Math.min(n++, delays.length - 1)]!),
      webSocketOpenTimeoutMs: 300,
      reconnect: { baseMs: 10, capMs: 20 },
    });
    await until(() => conn!.state === "open", "the first open");
    expect(conn.transportKind).toBe("websocket");
    proxy.cut();
    await until(() => conn!.state === "reconnecting", "the drop");
    await until(() => conn!.state === "open", "the second open, 500 ms against a 300 ms setting", 5_000);
    expect(conn.transportKind).toBe("websocket");
  });

  it("a WebSocket that worked is tried again three times before the fallback, and the probe moves back", async () => {
    h = await startHarness();
    proxy = await startTcpProxy(h.port);
    let slow = false;
    const errors: string[] = [];
    conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, {
      webSocket: slowOpens(() => (slow ? 2_000 : 10)),
      webSocketOpenTimeoutMs: 200,
      upgradeProbeMs: 300,
      reconnect: { baseMs: 10, capMs: 20 },
    });
    conn.on("error", (e) => errors.push(e.reason));
    await until(() => conn!.state === "open", "the first open");
    slow = true;
    // The link drops; the client reconnects into the slow network.
    proxy.cut();
    await until(() => conn!.state === "open" && conn!.transportKind === "http", "the fallback after three timeouts", 10_000);
    expect(errors.filter((r) => r === "open_timeout").length).toBeGreaterThanOrEqual(3);
    slow = false;
    await until(() => conn!.transportKind === "websocket", "the probe moving back to WebSocket", 5_000);
  });
});
