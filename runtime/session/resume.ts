/**
 * The one decision of PROTOCOL.md section 8.3, "may this Resume continue this session?",
 * whatever holds the session: this node, another node asked for it, or a session store.
 */

/** A session as the decision needs to see it, from any source. */
export interface ResumeCandidate {
  /** The session's resume token. */
  readonly token: string;
  /** The principal it belongs to. */
  readonly principal: string;
  readonly anonymous: boolean;
  /** Seq of the last frame the session sent (or stored) to the client. */
  readonly lastSentSeq: number;
  /** The session's buffer overflowed while it was detached. */
  readonly lost: boolean;
  /** Whether the frames after `lastSeq` up to the last sent are all still held. */
  holdsAfter(lastSeq: number): boolean;
}

/** What the client's Resume asks, with the principal of the connection it arrived on. */
export interface ResumeAsk {
  readonly token: string;
  readonly principal: string;
  readonly anonymous: boolean;
  readonly lastSeq: number;
}

/**
 * "resume": continue the session. Otherwise the session is not continued and the client gets a
 * new one with SessionLost{reason}; `endsSession` says whether the old session ends as well.
 * "beyond_sent" is not a SessionLost reason: a client that claims frames never sent is broken,
 * and its connection is closed with 4500.
 */
export type ResumeVerdict =
  | { readonly kind: "resume" }
  | { readonly kind: "refuse"; readonly reason: "unknown" | "bad_token" | "overflow"; readonly endsSession: boolean }
  | { readonly kind: "violation"; readonly reason: "beyond_sent" };

export function judgeResume(session: ResumeCandidate | undefined, ask: ResumeAsk): ResumeVerdict {
  if (session === undefined) return { kind: "refuse", reason: "unknown", endsSession: false };
  if (!sameSecret(session.token, ask.token)) return { kind: "refuse", reason: "bad_token", endsSession: false };
  // Anonymous principals differ per connection: the token alone speaks for them (section 2.3).
  const anonymous = session.anonymous && ask.anonymous;
  if (!anonymous && session.principal !== ask.principal) return { kind: "refuse", reason: "unknown", endsSession: false };
  if (ask.lastSeq > session.lastSentSeq) return { kind: "violation", reason: "beyond_sent" };
  if (session.lost || !session.holdsAfter(ask.lastSeq)) return { kind: "refuse", reason: "overflow", endsSession: true };
  return { kind: "resume" };
}

/** Compares two secrets in time that does not depend on where they first differ. */
export function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
