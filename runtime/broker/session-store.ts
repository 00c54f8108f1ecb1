import type { SessionSnapshot } from "../session/snapshot.js";
/**
 * Where sessions are kept so that they outlive the node serving them. With a shared store
 * (Redis), a node writes every frame addressed to a session before it sends it; when the node
 * dies, another node claims the session and the client resumes it there as if nothing
 * happened. Without one, a session lives in its node's memory (and moves between live nodes
 * by handover).
 *
 * A session has one owner node at a time. claim() makes the caller the owner; from then on
 * the old owner's writes for it are refused, so two nodes never both extend one session.
 */
export interface SessionStore {
  /**
   * Applies the writes of several sessions of one owner. Resolves, per write, to true when it
   * was stored, false when the session belongs to another node now (or is gone). Rejects when
   * the store cannot be reached; nothing of the batch is known to be stored then.
   */
  write(owner: string, writes: readonly SessionWrite[], ttlMs: number): Promise<boolean[]>;
  /**
   * Makes `owner` the owner of a session and returns what the store holds of it, or undefined
   * when it holds nothing under that id (never stored, ended, or expired).
   */
  claim(sessionId: string, owner: string, ttlMs: number): Promise<StoredSession | undefined>;
  /** Forgets sessions that ended; only those `owner` still owns. */
  remove(owner: string, sessionIds: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** One session's changes since its last write. */
export interface SessionWrite {
  readonly id: string;
  /** Present on the first write of a session (and after a claim): who it is and its secret. */
  readonly create?: { readonly token: string; readonly principal: string } | undefined;
  /** New frames addressed to the session: [seq, encoded envelope], seq increasing. */
  readonly frames: readonly (readonly [number, Uint8Array])[];
  /** Highest seq assigned so far. */
  readonly outSeq: number;
  /** Highest client seq processed. */
  readonly inSeq: number;
  /** Frames up to this seq were acknowledged by the client and may be dropped. */
  readonly ackSeq: number;
  /** Present when they changed: the session's subscriptions, as a JSON text. */
  readonly subs?: string | undefined;
  /** Present when they changed: ids of calls received and not yet answered, as a JSON text. */
  readonly calls?: string | undefined;
}

/** A session as the store keeps it: the one snapshot shape of session/snapshot.ts. */
export type StoredSession = SessionSnapshot;

interface Entry {
  owner: string;
  token: string;
  principal: string;
  outSeq: number;
  inSeq: number;
  frames: [number, Uint8Array][];
  subs: string;
  calls: string;
  expiresAt: number;
}

/**
 * A store in this process's memory. It outlives a server core, not the process: for tests, and
 * for several cores in one process that share it.
 */
export function createMemorySessionStore(options: { now?: () => number } = {}): SessionStore & { readonly size: number } {
  const now = options.now ?? Date.now;
  const sessions = new Map<string, Entry>();
  const live = (id: string): Entry | undefined => {
    const e = sessions.get(id);
    if (e !== undefined && e.expiresAt <= now()) {
      sessions.delete(id);
      return undefined;
    }
    return e;
  };
  return {
    get size() {
      return sessions.size;
    },
    write(owner, writes, ttlMs) {
      const out = writes.map((w) => {
        let e = live(w.id);
        if (e === undefined) {
          if (w.create === undefined) return false;
          e = { owner, token: w.create.token, principal: w.create.principal, outSeq: 0, inSeq: 0, frames: [], subs: "[]", calls: "[]", expiresAt: 0 };
          sessions.set(w.id, e);
        } else if (e.owner !== owner) return false;
        if (w.create !== undefined) {
          e.token = w.create.token;
          e.principal = w.create.principal;
        }
        for (const [seq, bytes] of w.frames) e.frames.push([seq, bytes.slice()]);
        e.frames = e.frames.filter(([seq]) => seq > w.ackSeq);
        e.outSeq = w.outSeq;
        e.inSeq = w.inSeq;
        if (w.subs !== undefined) e.subs = w.subs;
        if (w.calls !== undefined) e.calls = w.calls;
        e.expiresAt = now() + ttlMs;
        return true;
      });
      return Promise.resolve(out);
    },
    claim(sessionId, owner, ttlMs) {
      const e = live(sessionId);
      if (e === undefined) return Promise.resolve(undefined);
      e.owner = owner;
      e.expiresAt = now() + ttlMs;
      return Promise.resolve({
        id: sessionId,
        token: e.token,
        principal: e.principal,
        outSeq: e.outSeq,
        inSeq: e.inSeq,
        frames: e.frames.map(([seq, b]) => [seq, b.slice()] as const),
        subs: e.subs,
        calls: e.calls,
      });
    },
    remove(owner, ids) {
      for (const id of ids) if (sessions.get(id)?.owner === owner) sessions.delete(id);
      return Promise.resolve();
    },
    close() {
      return Promise.resolve();
    },
  };
}
