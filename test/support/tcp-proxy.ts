import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A loopback TCP proxy a test can cut: cut() resets every proxied connection (an RST both
 * ways), as a network failure would; the proxy keeps listening so clients can come back.
 */
export interface TcpProxy {
  readonly port: number;
  /** Connections currently proxied. */
  readonly open: number;
  cut(): void;
  /** While blocked, new connections are reset at once: the server looks unreachable. */
  block(): void;
  unblock(): void;
  /** Stops forwarding in both directions without closing anything: a half-open link. */
  stall(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let blocked = false;
  const server: Server = createServer((inbound) => {
    if (blocked) {
      inbound.on("error", () => undefined);
      inbound.resetAndDestroy();
      return;
    }
    const outbound = connect(targetPort, "127.0.0.1");
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", end).on("close", end);
    outbound.on("error", end).on("close", end);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  const cut = (): void => {
    for (const [a, b] of pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    pairs.clear();
  };
  return {
    port: address.port,
    get open() {
      return pairs.size;
    },
    cut,
    block() {
      blocked = true;
    },
    unblock() {
      blocked = false;
    },
    stall() {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close() {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
