// The one resume decision, for a session held here, on another node or in a store: every
// verdict, with candidates built from a real Sequencer the way each source builds them.
import { describe, expect, it } from "vitest";
import { judgeResume, sameSecret, type ResumeAsk, type ResumeCandidate } from "../../runtime/session/resume.js";
import { Sequencer } from "../../runtime/session/sequencer.js";

function session(over: Partial<ResumeCandidate> & { sent?: number; acked?: number; upTo?: number } = {}): ResumeCandidate {
  const seq = new Sequencer<string>({ maxFrames: 100, maxBytes: 1_000 });
  for (let i = 0; i < (over.sent ?? 5); i++) seq.number(`f${i + 1}`, 1);
  seq.acknowledged(over.acked ?? 2);
  const upTo = over.upTo ?? seq.outSeq;
  return {
    token: "secret-token",
    principal: "alice",
    anonymous: false,
    lastSentSeq: upTo,
    lost: false,
    holdsAfter: (lastSeq) => seq.canResumeFrom(lastSeq, upTo),
    ...over,
  };
}
const ask = (over: Partial<ResumeAsk> = {}): ResumeAsk => ({ token: "secret-token", principal: "alice", anonymous: false, lastSeq: 3, ...over });

describe("judgeResume", () => {
  it("resumes the right principal with the right token and every missing frame held", () => {
    expect(judgeResume(session(), ask())).toEqual({ kind: "resume" });
    expect(judgeResume(session(), ask({ lastSeq: 5 }))).toEqual({ kind: "resume" }); // nothing missing
  });

  it("an unknown session, a wrong token or another principal: a new session, the old one kept", () => {
    expect(judgeResume(undefined, ask())).toEqual({ kind: "refuse", reason: "unknown", endsSession: false });
    expect(judgeResume(session(), ask({ token: "secret-tokeN" }))).toEqual({ kind: "refuse", reason: "bad_token", endsSession: false });
    expect(judgeResume(session(), ask({ principal: "mallory" }))).toEqual({ kind: "refuse", reason: "unknown", endsSession: false });
  });

  it("anonymous principals are judged by the token alone", () => {
    expect(judgeResume(session({ anonymous: true, principal: "anon-1" }), ask({ anonymous: true, principal: "anon-2" }))).toEqual({ kind: "resume" });
    expect(judgeResume(session({ anonymous: true, principal: "anon-1" }), ask({ principal: "anon-2" }))).toMatchObject({ reason: "unknown" });
  });

  it("frames the client lacks are gone, or the session overflowed: overflow, and the session ends", () => {
    expect(judgeResume(session({ acked: 4 }), ask({ lastSeq: 3 }))).toEqual({ kind: "refuse", reason: "overflow", endsSession: true });
    expect(judgeResume(session({ lost: true }), ask())).toEqual({ kind: "refuse", reason: "overflow", endsSession: true });
  });

  it("a last_seq beyond the last sent frame is a violation wherever the session is held", () => {
    expect(judgeResume(session(), ask({ lastSeq: 6 }))).toEqual({ kind: "violation", reason: "beyond_sent" });
    // A store that has frames up to 4 only: the client cannot have 5.
    expect(judgeResume(session({ upTo: 4 }), ask({ lastSeq: 5 }))).toEqual({ kind: "violation", reason: "beyond_sent" });
  });

  it("compares secrets exactly", () => {
    expect(sameSecret("abc", "abc")).toBe(true);
    expect(sameSecret("abc", "abd")).toBe(false);
    expect(sameSecret("abc", "abcd")).toBe(false);
  });
});
