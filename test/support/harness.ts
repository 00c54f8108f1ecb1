import { createServer, connect, type Connection, type ProtocastServer, type ServerOptions, type ConnectOptions } from "protocast/node";

/** A server listening on an ephemeral loopback port, and helpers to open clients to it. */
export interface Harness {
  readonly server: ProtocastServer;
  readonly url: string;
  readonly port: number;
  client(options?: ConnectOptions): Connection;
  close(): Promise<void>;
}

export async function startHarness(options: ServerOptions = {}, setup?: (server: ProtocastServer) => void): Promise<Harness> {
  const server = createServer(options);
  setup?.(server);
  const addr = await server.listen(0, "127.0.0.1");
  const url = `ws://127.0.0.1:${addr.port}/protocast`;
  const clients: Connection[] = [];
  return {
    server,
    url,
    port: addr.port,
    client(o = {}) {
      const c = connect(url, { reconnect: { baseMs: 50, capMs: 500 }, ...o });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close({ deadlineMs: 200 });
    },
  };
}

/** Waits until `check` returns true, polling; fails with `what` after the timeout. */
export async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
