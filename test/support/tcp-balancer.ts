import { connect, createServer, type Server, type Socket } from "node:net";

export interface Balancer {
  readonly port: number;
  /**
   * Sends every new connection to one backend (its index) from now on, or back to taking turns
   * with undefined: a test that moves a client to a given node says which, instead of counting on
   * the turn (a retried connection would take a turn of its own).
   */
  routeTo(backend: number | undefined): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP load balancer for multi-node tests: each new connection goes to the next
 * backend in turn; a backend that refuses is skipped. No stickiness, as a plain L4 balancer.
 */
export async function startBalancer(backends: readonly number[]): Promise<Balancer> {
  let next = 0;
  let fixed: number | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    sockets.add(inbound);
    inbound.on("close", () => sockets.delete(inbound));
    inbound.on("error", () => undefined);
    inbound.pause();
    const attempt = (tries: number): void => {
      if (tries >= backends.length || (fixed !== undefined && tries > 0)) {
        inbound.destroy();
        return;
      }
      const port = backends[fixed ?? next++ % backends.length]!;
      const outbound = connect(port, "127.0.0.1");
      outbound.once("error", () => attempt(tries + 1));
      outbound.once("connect", () => {
        outbound.removeAllListeners("error");
        sockets.add(outbound);
        outbound.on("close", () => {
          sockets.delete(outbound);
          inbound.destroy();
        });
        outbound.on("error", () => undefined);
        inbound.on("close", () => outbound.destroy());
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        inbound.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("balancer has no port");
  return {
    port: address.port,
    routeTo: (backend) => {
      if (backend !== undefined && backends[backend] === undefined) throw new Error(`no backend ${backend}`);
      fixed = backend;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
