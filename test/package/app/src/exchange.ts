// What the Node client and the browser page both do: a call, a channel event with presence, a
// direct event. Imports only "protocast", so the page's bundle gets the browser build.
import { connect, createClient, type Connection } from "protocast";
import { NotesService } from "./gen/notes/v1/notes_protocast.js";

export interface Exchange {
  readonly number: number;
  readonly event: { readonly number: number; readonly text: string; readonly author: string };
  readonly members: readonly string[];
  readonly alert: string;
  readonly transport: string;
}

export async function exchange(url: string, user: string): Promise<Exchange> {
  const conn = connect(url, { token: `good-${user}` });
  try {
    const notes = createClient(NotesService, conn);
    const board = notes.boardEvents({ boardId: "b1" });
    await board.ready;
    const alerts = notes.alerts()[Symbol.asyncIterator]();
    const events = board[Symbol.asyncIterator]();
    const { number } = await notes.addNote({ boardId: "b1", text: `hello from ${user}` });
    const event = await events.next();
    const alert = await alerts.next();
    if (event.done === true || alert.done === true) throw new Error("a stream ended early");
    return {
      number,
      event: { number: event.value.number, text: event.value.text, author: event.value.author },
      members: [...board.members.values()].map((m) => m.principal),
      alert: alert.value.text,
      transport: conn.transportKind ?? "none",
    };
  } finally {
    conn.close();
  }
}

export interface Refusal {
  readonly code: number;
  readonly reason: string;
  readonly ms: number;
  readonly state: string;
  /** Times the client went back to reconnecting after the refusal. */
  readonly reconnects: number;
  readonly callCode: number;
}

/** Connects with a token the server refuses: how fast and how the refusal surfaces. */
export async function refused(url: string): Promise<Refusal> {
  const started = Date.now();
  const conn: Connection = connect(url, { token: "bad-token" });
  let reconnects = 0;
  conn.on("state", ({ newState }) => {
    if (newState === "reconnecting") reconnects++;
  });
  const notes = createClient(NotesService, conn);
  const call = notes.addNote({ boardId: "b1", text: "never" }).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
  const err = await new Promise<{ code: number; reason: string }>((resolve) => conn.on("error", (e) => resolve(e)));
  const ms = Date.now() - started;
  const callCode = await call;
  // Anything scheduled would show up as another attempt in this time.
  await new Promise((r) => setTimeout(r, 1500));
  const result = { code: err.code, reason: err.reason, ms, state: conn.state, reconnects, callCode };
  conn.close();
  return result;
}
