// The state machines of PROTOCOL.md 8.7: the tables in the text are the runtime's tables, and a
// client driven through every transition over an in-memory transport makes only those moves.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Code, ProtocastError, ServerCore, connect, createClient, createMemoryTransportPair, type ConnectionState, type MemoryTransportPair } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { CONNECTION_TRANSITIONS, SESSION_TRANSITIONS, allows } from "../../runtime/session/states.js";
import { until } from "../support/wait.js";

const PROTOCOL = readFileSync(fileURLToPath(new URL("../../PROTOCOL.md", import.meta.url)), "utf8");

/** The (from, to) rows of the table under a "#### <title>" heading. */
function tableRows(title: string): string[] {
  const start = PROTOCOL.indexOf(`#### ${title}\n`);
  expect(start, `PROTOCOL.md has "#### ${title}"`).toBeGreaterThan(0);
  const rows: string[] = [];
  for (const line of PROTOCOL.slice(start).split("\n").slice(1)) {
    if (line.startsWith("#")) break;
    const m = /^\| `([a-z]+)` \| `([a-z]+)` \|/.exec(line);
    if (m !== null) rows.push(`${m[1]} -> ${m[2]}`);
  }
  return rows.sort();
}

function pairs(table: Readonly<Record<string, readonly string[]>>): string[] {
  return Object.entries(table)
    .flatMap(([from, tos]) => tos.map((to) => `${from} -> ${to}`))
    .sort();
}

describe("PROTOCOL.md 8.7 and session/states.ts", () => {
  it("the client connection table is the runtime's", () => {
    expect(tableRows("Client connection")).toEqual(pairs(CONNECTION_TRANSITIONS));
  });

  it("the server session table is the runtime's", () => {
    expect(tableRows("Server session")).toEqual(pairs(SESSION_TRANSITIONS));
  });
});

/** A client and a server core joined by in-memory transports the test controls. */
function rig(options: { refuse?: () => Error | undefined; maxAttempts?: number } = {}) {
  const core = new ServerCore({ graceMs: 60_000, ackDelayMs: 5 });
  core.implement(ChatService, { sendMessage: (r) => ({ messageId: r.text }), listRooms: () => ({ rooms: [] }) });
  const links: MemoryTransportPair[] = [];
  const moves: string[] = [];
  const conn = connect("memory://", {
    reconnect: { baseMs: 1, capMs: 2, ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }) },
    watchNetwork: false,
    transport: () => {
      const refusal = options.refuse?.();
      if (refusal !== undefined) return Promise.reject(refusal);
      const link = createMemoryTransportPair();
      links.push(link);
      core.accept(link.server, { id: "alice", scopes: ["*"] });
      return Promise.resolve(link.client);
    },
  });
  conn.on("state", ({ oldState, newState }) => moves.push(`${oldState} -> ${newState}`));
  conn.on("error", () => undefined);
  const waitFor = (state: ConnectionState): Promise<number> => until(() => conn.state === state, `state ${state}`);
  return { core, conn, links, moves, waitFor };
}

describe("client connection transitions, over an in-memory transport", () => {
  const seen = new Set<string>();
  const check = (moves: string[]): void => {
    for (const m of moves) {
      const [from, to] = m.split(" -> ") as [ConnectionState, ConnectionState];
      expect(allows(CONNECTION_TRANSITIONS, from, to), m).toBe(true);
      seen.add(m);
    }
  };

  it("opens, drops and resumes, then closes", async () => {
    const r = rig();
    await r.waitFor("open");
    const session = r.core.sessions.values().next().value!;
    expect(session.state).toBe("attached");
    r.links.at(-1)!.cut();
    await r.waitFor("reconnecting");
    await until(() => session.state === "detached", "the session to be detached");
    await r.waitFor("open");
    expect(session.state).toBe("attached"); // resumed, not replaced
    expect(r.core.sessions.get(session.id)).toBe(session);
    await createClient(ChatService, r.conn).sendMessage({ roomId: "a", text: "x" });
    await r.conn.close();
    expect(r.conn.state).toBe("closed");
    await until(() => session.state === "ended", "the session to end on 1000");
    check(r.moves);
    expect(r.core.counters.stateViolations).toEqual({});
    await r.core.close();
  });

  it("retries a failed first attempt, and gives up when the attempts run out", async () => {
    let fail = 1;
    const r = rig({ refuse: () => (fail-- > 0 ? new Error("connection refused") : undefined) });
    await r.waitFor("open");
    check(r.moves);
    await r.conn.close();
    const g = rig({ refuse: () => new Error("connection refused"), maxAttempts: 2 });
    await g.waitFor("closed");
    check(g.moves);
    expect(g.moves).toContain("reconnecting -> closed");
    await Promise.all([r.core.close(), g.core.close()]);
  });

  it("stops at once on a refusal for good, and closes from open on a do-not-reconnect code", async () => {
    const r = rig({ refuse: () => new ProtocastError(Code.Unauthenticated, "bad token", { closeCode: 4502, reason: "unauthenticated" }) });
    await r.waitFor("closed");
    check(r.moves);
    expect(r.moves).toEqual(["connecting -> closed"]);
    const o = rig();
    await o.waitFor("open");
    o.links.at(-1)!.server.close(4500, "protocol violation");
    await o.waitFor("closed");
    check(o.moves);
    expect(o.moves.at(-1)).toBe("open -> closed");
    await Promise.all([r.core.close(), o.core.close()]);
  });

  it("closes while connecting and while reconnecting", async () => {
    const c = rig({ refuse: () => new Error("never") });
    await c.conn.close();
    check(c.moves);
    const r = rig();
    await r.waitFor("open");
    r.links.at(-1)!.cut();
    await r.waitFor("reconnecting");
    await r.conn.close();
    check(r.moves);
    await Promise.all([c.core.close(), r.core.close()]);
  });

  it("has gone through every transition of the table", () => {
    expect([...seen].sort()).toEqual(pairs(CONNECTION_TRANSITIONS));
  });
});
