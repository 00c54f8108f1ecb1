/**
 * Plain TypeScript shapes of protocast.v1 frames. They mirror what protobuf-es generates for
 * envelope.proto (camelCase fields, oneof as { case, value }) except that 64-bit fields are
 * numbers: every 64-bit value Protocast uses stays below 2^53, and the decoder rejects larger.
 * A property test proves the hand-written codec byte-compatible with protobuf-es.
 */

export interface Hello { version: number; client: string }
export interface SessionLost { previousSessionId: string; reason: string; lostFromSeq: number; lostToSeq: number }
export interface Welcome {
  version: number;
  sessionId: string;
  resumeToken: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxEnvelopeBytes: number;
  expiresAtMs: number;
  sessionLost: SessionLost | undefined;
  principal: string;
}
export interface Resume { version: number; sessionId: string; resumeToken: string; lastSeq: number; client: string }
export interface Resumed {
  sessionId: string;
  lastSeq: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxEnvelopeBytes: number;
  expiresAtMs: number;
}
export interface Call { id: number; method: string; payload: Uint8Array; timeoutMs: number; idempotencyKey: string }
export interface Reply { id: number; payload: Uint8Array }
export interface ErrorFrame { id: number; code: number; message: string; reason: string; retryAfterMs: number }
export interface Cancel { id: number }
export interface Subscribe { id: number; method: string; channel: string; recover: boolean; epoch: string; offset: number }
export interface Gap { fromOffset: number; toOffset: number; reason: string }
export interface Member { clientId: string; principal: string }
export interface Subscribed {
  id: number;
  channel: string;
  epoch: string;
  offset: number;
  recovered: boolean;
  gap: Gap | undefined;
  members: Member[];
}
export interface Unsubscribe { id: number; channel: string }
export interface Unsubscribed { id: number; channel: string; code: number; reason: string }
export interface Publish { id: number; method: string; channel: string; payload: Uint8Array; idempotencyKey: string }
export interface Event { channel: string; epoch: string; offset: number; payload: Uint8Array }
export interface Presence { channel: string; joined: Member[]; left: Member[] }
export interface Push { method: string; payload: Uint8Array }
export interface ChannelPosition { channel: string; epoch: string; offset: number }
export interface Ack { channels: ChannelPosition[] }
export interface Ping { sentAtMs: number }
export interface Pong { sentAtMs: number }
export interface AuthRefresh { id: number; token: string }
export interface AuthRefreshed { id: number; expiresAtMs: number }
export interface AuthExpiring { expiresAtMs: number }
export interface Goaway { reason: string; reconnectAfterMs: number; closeInMs: number }

/** The oneof of frame kinds, keyed by the proto field name in camelCase. */
export type Frame =
  | { case: "hello"; value: Hello }
  | { case: "welcome"; value: Welcome }
  | { case: "call"; value: Call }
  | { case: "reply"; value: Reply }
  | { case: "error"; value: ErrorFrame }
  | { case: "subscribe"; value: Subscribe }
  | { case: "subscribed"; value: Subscribed }
  | { case: "unsubscribe"; value: Unsubscribe }
  | { case: "unsubscribed"; value: Unsubscribed }
  | { case: "publish"; value: Publish }
  | { case: "event"; value: Event }
  | { case: "presence"; value: Presence }
  | { case: "push"; value: Push }
  | { case: "ack"; value: Ack }
  | { case: "ping"; value: Ping }
  | { case: "pong"; value: Pong }
  | { case: "resume"; value: Resume }
  | { case: "resumed"; value: Resumed }
  | { case: "authRefresh"; value: AuthRefresh }
  | { case: "authRefreshed"; value: AuthRefreshed }
  | { case: "authExpiring"; value: AuthExpiring }
  | { case: "goaway"; value: Goaway }
  | { case: "cancel"; value: Cancel };

export type FrameCase = Frame["case"];

/** One protocol frame. */
export interface Envelope {
  seq: number;
  ackSeq: number;
  frame: Frame;
}

/** Field number of each frame kind inside Envelope; the decoder and encoder share it. */
export const FRAME_FIELD: Readonly<Record<FrameCase, number>> = {
  hello: 3,
  welcome: 4,
  call: 5,
  reply: 6,
  error: 7,
  subscribe: 8,
  subscribed: 9,
  unsubscribe: 10,
  unsubscribed: 11,
  publish: 12,
  event: 13,
  presence: 14,
  push: 15,
  ack: 16,
  ping: 17,
  pong: 18,
  resume: 19,
  resumed: 20,
  authRefresh: 21,
  authRefreshed: 22,
  authExpiring: 23,
  goaway: 24,
  cancel: 25,
};

/** Builds an envelope for a frame; seq and ackSeq default to 0. */
export function envelope(frame: Frame, seq = 0, ackSeq = 0): Envelope {
  return { seq, ackSeq, frame };
}
