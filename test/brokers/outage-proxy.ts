import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A loopback TCP proxy in front of a broker that a test can take down: down() resets every
 * proxied connection and refuses new ones (a broker that went away), up() accepts again.
 * swallowReplies() keeps forwarding requests but drops what the broker answers, so a command
 * runs while its caller never hears of it.
 */
export interface OutageProxy {
  readonly port: number;
  down(): void;
  up(): void;
  swallowReplies(): void;
  close(): Promise<void>;
}

export async function startOutageProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<OutageProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let isDown = false;
  let swallow = false;
  const server: Server = createServer((inbound) => {
    if (isDown) {
      inbound.resetAndDestroy();
      return;
    }
    const outbound = connect(targetPort, targetHost);
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
    outbound.on("data", (chunk: Buffer) => {
      if (!swallow) inbound.write(chunk);
    });
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
    down() {
      isDown = true;
      cut();
    },
    up() {
      isDown = false;
      swallow = false;
    },
    swallowReplies() {
      swallow = true;
    },
    close() {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
