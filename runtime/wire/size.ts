import type {
  Ack,
  AuthExpiring,
  AuthRefresh,
  AuthRefreshed,
  Call,
  Cancel,
  ChannelPosition,
  ErrorFrame,
  Event,
  Frame,
  Gap,
  Goaway,
  Hello,
  Member,
  Ping,
  Pong,
  Presence,
  Publish,
  Push,
  Reply,
  Resume,
  Resumed,
  SessionLost,
  Subscribe,
  Subscribed,
  Unsubscribe,
  Unsubscribed,
  Welcome,
} from "./envelope.js";
import { unencodable } from "./wire-errors.js";
import { utf8Length, varintSize } from "./writer.js";

/*
 * Encoded sizes, computed before anything is written so that the encoder allocates once.
 * This pass also validates every number, so the write pass can trust its input.
 * Each helper returns the size of one field including its one-byte tag (every field inside a
 * frame has a number below 16), or 0 when proto3 omits the field because it holds its default.
 */

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function uint32Field(v: number, field: string): number {
  if (v === 0) return 0;
  if (v >>> 0 !== v) throw unencodable(field, v, "a uint32");
  return 1 + varintSize(v);
}

export function uint64Field(v: number, field: string): number {
  if (v === 0) return 0;
  if (!(v > 0 && v <= MAX_SAFE && Math.floor(v) === v)) {
    throw unencodable(field, v, "an integer in [0, 2^53-1]");
  }
  return 1 + varintSize(v);
}

function enumField(v: number, field: string): number {
  if (v === 0) return 0;
  if ((v | 0) !== v) throw unencodable(field, v, "an int32");
  return 1 + (v < 0 ? 10 : varintSize(v));
}

function stringField(s: string): number {
  if (s.length === 0) return 0;
  const n = utf8Length(s);
  return 1 + varintSize(n) + n;
}

function bytesField(b: Uint8Array): number {
  const n = b.length;
  return n === 0 ? 0 : 1 + varintSize(n) + n;
}

function boolField(b: boolean): number {
  return b ? 2 : 0;
}

/** A present message field: tag, length, body. Written even when the body is empty. */
function messageField(body: number): number {
  return 1 + varintSize(body) + body;
}

/** Size of a frame's body, without the Envelope's tag and length prefix. */
export function frameSize(frame: Frame): number {
  switch (frame.case) {
    case "hello": return helloSize(frame.value);
    case "welcome": return welcomeSize(frame.value);
    case "call": return callSize(frame.value);
    case "reply": return replySize(frame.value);
    case "error": return errorSize(frame.value);
    case "subscribe": return subscribeSize(frame.value);
    case "subscribed": return subscribedSize(frame.value);
    case "unsubscribe": return unsubscribeSize(frame.value);
    case "unsubscribed": return unsubscribedSize(frame.value);
    case "publish": return publishSize(frame.value);
    case "event": return eventSize(frame.value);
    case "presence": return presenceSize(frame.value);
    case "push": return pushSize(frame.value);
    case "ack": return ackSize(frame.value);
    case "ping": return pingSize(frame.value);
    case "pong": return pongSize(frame.value);
    case "resume": return resumeSize(frame.value);
    case "resumed": return resumedSize(frame.value);
    case "authRefresh": return authRefreshSize(frame.value);
    case "authRefreshed": return authRefreshedSize(frame.value);
    case "authExpiring": return authExpiringSize(frame.value);
    case "goaway": return goawaySize(frame.value);
    case "cancel": return cancelSize(frame.value);
    default: throw unencodable("Envelope.frame", (frame as { case: unknown }).case, "a frame kind");
  }
}

function helloSize(m: Hello): number {
  return uint32Field(m.version, "Hello.version") + stringField(m.client);
}

function welcomeSize(m: Welcome): number {
  return (
    uint32Field(m.version, "Welcome.version") +
    stringField(m.sessionId) +
    stringField(m.resumeToken) +
    uint32Field(m.pingIntervalMs, "Welcome.pingIntervalMs") +
    uint32Field(m.pingTimeoutMs, "Welcome.pingTimeoutMs") +
    uint32Field(m.maxEnvelopeBytes, "Welcome.maxEnvelopeBytes") +
    uint64Field(m.expiresAtMs, "Welcome.expiresAtMs") +
    (m.sessionLost === undefined ? 0 : messageField(sessionLostSize(m.sessionLost))) +
    stringField(m.principal)
  );
}

function sessionLostSize(m: SessionLost): number {
  return (
    stringField(m.previousSessionId) +
    stringField(m.reason) +
    uint64Field(m.lostFromSeq, "SessionLost.lostFromSeq") +
    uint64Field(m.lostToSeq, "SessionLost.lostToSeq")
  );
}

function resumeSize(m: Resume): number {
  return (
    uint32Field(m.version, "Resume.version") +
    stringField(m.sessionId) +
    stringField(m.resumeToken) +
    uint64Field(m.lastSeq, "Resume.lastSeq") +
    stringField(m.client)
  );
}

function resumedSize(m: Resumed): number {
  return (
    stringField(m.sessionId) +
    uint64Field(m.lastSeq, "Resumed.lastSeq") +
    uint32Field(m.pingIntervalMs, "Resumed.pingIntervalMs") +
    uint32Field(m.pingTimeoutMs, "Resumed.pingTimeoutMs") +
    uint32Field(m.maxEnvelopeBytes, "Resumed.maxEnvelopeBytes") +
    uint64Field(m.expiresAtMs, "Resumed.expiresAtMs")
  );
}

function callSize(m: Call): number {
  return (
    uint32Field(m.id, "Call.id") +
    stringField(m.method) +
    bytesField(m.payload) +
    uint32Field(m.timeoutMs, "Call.timeoutMs") +
    stringField(m.idempotencyKey)
  );
}

function replySize(m: Reply): number {
  return uint32Field(m.id, "Reply.id") + bytesField(m.payload);
}

function errorSize(m: ErrorFrame): number {
  return (
    uint32Field(m.id, "Error.id") +
    enumField(m.code, "Error.code") +
    stringField(m.message) +
    stringField(m.reason) +
    uint32Field(m.retryAfterMs, "Error.retryAfterMs")
  );
}

function cancelSize(m: Cancel): number {
  return uint32Field(m.id, "Cancel.id");
}

function subscribeSize(m: Subscribe): number {
  return (
    uint32Field(m.id, "Subscribe.id") +
    stringField(m.method) +
    stringField(m.channel) +
    boolField(m.recover) +
    stringField(m.epoch) +
    uint64Field(m.offset, "Subscribe.offset")
  );
}

function subscribedSize(m: Subscribed): number {
  return (
    uint32Field(m.id, "Subscribed.id") +
    stringField(m.channel) +
    stringField(m.epoch) +
    uint64Field(m.offset, "Subscribed.offset") +
    boolField(m.recovered) +
    (m.gap === undefined ? 0 : messageField(gapSize(m.gap))) +
    membersSize(m.members)
  );
}

function gapSize(m: Gap): number {
  return uint64Field(m.fromOffset, "Gap.fromOffset") + uint64Field(m.toOffset, "Gap.toOffset") + stringField(m.reason);
}

function memberSize(m: Member): number {
  return stringField(m.clientId) + stringField(m.principal);
}

function membersSize(list: readonly Member[]): number {
  let size = 0;
  for (let i = 0; i < list.length; i++) size += messageField(memberSize(list[i]!));
  return size;
}

function unsubscribeSize(m: Unsubscribe): number {
  return uint32Field(m.id, "Unsubscribe.id") + stringField(m.channel);
}

function unsubscribedSize(m: Unsubscribed): number {
  return (
    uint32Field(m.id, "Unsubscribed.id") +
    stringField(m.channel) +
    enumField(m.code, "Unsubscribed.code") +
    stringField(m.reason)
  );
}

function publishSize(m: Publish): number {
  return (
    uint32Field(m.id, "Publish.id") +
    stringField(m.method) +
    stringField(m.channel) +
    bytesField(m.payload) +
    stringField(m.idempotencyKey)
  );
}

function eventSize(m: Event): number {
  return stringField(m.channel) + stringField(m.epoch) + uint64Field(m.offset, "Event.offset") + bytesField(m.payload);
}

function presenceSize(m: Presence): number {
  return stringField(m.channel) + membersSize(m.joined) + membersSize(m.left);
}

function pushSize(m: Push): number {
  return stringField(m.method) + bytesField(m.payload);
}

function ackSize(m: Ack): number {
  let size = 0;
  for (let i = 0; i < m.channels.length; i++) size += messageField(positionSize(m.channels[i]!));
  return size;
}

function positionSize(m: ChannelPosition): number {
  return stringField(m.channel) + stringField(m.epoch) + uint64Field(m.offset, "ChannelPosition.offset");
}

function pingSize(m: Ping): number {
  return uint64Field(m.sentAtMs, "Ping.sentAtMs");
}

function pongSize(m: Pong): number {
  return uint64Field(m.sentAtMs, "Pong.sentAtMs");
}

function authRefreshSize(m: AuthRefresh): number {
  return uint32Field(m.id, "AuthRefresh.id") + stringField(m.token);
}

function authRefreshedSize(m: AuthRefreshed): number {
  return uint32Field(m.id, "AuthRefreshed.id") + uint64Field(m.expiresAtMs, "AuthRefreshed.expiresAtMs");
}

function authExpiringSize(m: AuthExpiring): number {
  return uint64Field(m.expiresAtMs, "AuthExpiring.expiresAtMs");
}

function goawaySize(m: Goaway): number {
  return (
    stringField(m.reason) +
    uint32Field(m.reconnectAfterMs, "Goaway.reconnectAfterMs") +
    uint32Field(m.closeInMs, "Goaway.closeInMs")
  );
}
