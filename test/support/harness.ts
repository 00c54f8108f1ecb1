import { createServer, connect, type Connection, type ProtocastServer, type ServerOptions, type ConnectOptions } from "protocast/node";
import { CONNECTION_TRANSITIONS, allows } from "../../runtime/session/states.js";

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
  // Every state change of every client and session is held to PROTOCOL.md 8.7's tables.
  const violations: string[] = [];
  return {
    server,
    url,
    port: addr.port,
    client(o = {}) {
      const c = connect(url, { reconnect: { baseMs: 50, capMs: 500 }, ...o });
      c.on("state", ({ oldState, newState }) => {
        if (!allows(CONNECTION_TRANSITIONS, oldState, newState)) violations.push(`client ${oldState} -> ${newState}`);
      });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close({ deadlineMs: 200 });
      for (const [move, n] of Object.entries(server.stats().counters.stateViolations)) violations.push(`session ${move} (${n}x)`);
      if (violations.length > 0) throw new Error(`state changes outside PROTOCOL.md 8.7: ${violations.join(", ")}`);
    },
  };
}

export { until } from "./wait.js";
