/**
 * The state machines of PROTOCOL.md section 8.7, as data: the client connection's states and
 * the server session's, with every transition either side may make. The runtime moves through
 * them (client/connection.ts, server/session.ts), the tests hold every observed move to these
 * tables, and a test checks the tables in PROTOCOL.md against them, so the three cannot drift.
 */

/** A client connection, as the application sees it. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closing" | "closed";

export const CONNECTION_TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  // First attempt: Welcome opens; a retryable failure backs off; a final refusal or
  // close() ends it.
  connecting: ["open", "reconnecting", "closing", "closed"],
  // The link dropped (reconnect and resume), close() was called, or a final close code arrived.
  open: ["reconnecting", "closing", "closed"],
  // Welcome or Resumed opens again; attempts used up or a final refusal ends it.
  reconnecting: ["open", "closing", "closed"],
  closing: ["closed"],
  closed: [],
};

/** A session on the server. "new" is a session made but not yet given a connection. */
export type SessionPhase = "new" | "attached" | "detached" | "moved" | "ended";

export const SESSION_TRANSITIONS: Readonly<Record<SessionPhase, readonly SessionPhase[]>> = {
  // Hello gives a new session its connection; a session taken from another node or a store
  // may wait, detached, for a client that left while it was fetched.
  new: ["attached", "detached", "ended"],
  // A Resume on another connection replaces this one (attached again); the connection drops
  // (grace period); another node takes it over; 1000 from the client, a kick of the server,
  // its shutdown or another node owning it in the store end it.
  attached: ["attached", "detached", "moved", "ended"],
  // A Resume continues it; another node takes it; the grace period runs out, or its
  // buffer overflowed and a Resume cannot continue it.
  detached: ["attached", "moved", "ended"],
  moved: [],
  ended: [],
};

/** Whether `table` allows the move from `from` to `to`. */
export function allows<S extends string>(table: Readonly<Record<S, readonly S[]>>, from: S, to: S): boolean {
  return table[from].includes(to);
}
