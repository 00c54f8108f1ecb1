import { CloseCode } from "../errors/close-codes.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { FrameCase } from "../wire/envelope.js";

/**
 * Which frame kinds carry a seq (PROTOCOL.md section 4.1), as data: a test reads the table in
 * PROTOCOL.md and the comment on Envelope.seq in envelope.proto and compares them with this.
 *
 * - always: a request or the answer to one; seq >= 1.
 * - reliable: a Push, sequenced when its event is at-least-once or exactly-once.
 * - never: connection-level frames and the shared channel frames; seq 0.
 */
export const SEQUENCING: Readonly<Record<FrameCase, "always" | "reliable" | "never">> = {
  hello: "never",
  welcome: "never",
  call: "always",
  reply: "always",
  error: "always",
  subscribe: "always",
  subscribed: "always",
  unsubscribe: "always",
  unsubscribed: "always",
  publish: "always",
  event: "never",
  presence: "never",
  push: "reliable",
  ack: "never",
  ping: "never",
  pong: "never",
  resume: "never",
  resumed: "never",
  authRefresh: "never",
  authRefreshed: "never",
  authExpiring: "never",
  goaway: "never",
  cancel: "never",
};

/**
 * Checks a received frame's seq against its kind: seq 0 on a kind that is always sequenced, or
 * a seq on one that never is, is a violation (close 4500, PROTOCOL.md 3.7). A Push is left to
 * the client, which knows its event's class.
 */
export function checkSequencing(kind: FrameCase, seq: number): void {
  const rule = SEQUENCING[kind];
  if (rule === "always" && seq === 0) {
    throw new ProtocastError(Code.InvalidArgument, `a ${kind} frame must carry a seq`, { closeCode: CloseCode.ProtocolViolation });
  }
  if (rule === "never" && seq !== 0) {
    throw new ProtocastError(Code.InvalidArgument, `a ${kind} frame is never sequenced, got seq ${seq}`, { closeCode: CloseCode.ProtocolViolation });
  }
}
