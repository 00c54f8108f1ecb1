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
import type { WireReader } from "./reader.js";

/*
 * One reader per message of envelope.proto. Each fills `m`, which is either a fresh message
 * with every default set or, when the same field occurred earlier, the message read then: that
 * is how protobuf merges a repeated occurrence of a message field.
 *
 * A reader switches on the whole tag, (field number << 3) | wire type, so 0x08 is field 1
 * varint and 0x12 is field 2 length-delimited. A defined field with another wire type falls
 * to skip(), which refuses it.
 */

const EMPTY = new Uint8Array(0);

/** Reads the frame in Envelope field `field` (3 to 25); `prev` is the frame read before, if any. */
export function readFrame(r: WireReader, end: number, field: number, prev: Frame | undefined): Frame {
  switch (field) {
    case 3: return { case: "hello", value: readHello(r, end, prev?.case === "hello" ? prev.value : { version: 0, client: "" }) };
    case 4: return { case: "welcome", value: readWelcome(r, end, prev?.case === "welcome" ? prev.value : newWelcome()) };
    case 5: return { case: "call", value: readCall(r, end, prev?.case === "call" ? prev.value : newCall()) };
    case 6: return { case: "reply", value: readReply(r, end, prev?.case === "reply" ? prev.value : { id: 0, payload: EMPTY }) };
    case 7: return { case: "error", value: readError(r, end, prev?.case === "error" ? prev.value : newError()) };
    case 8: return { case: "subscribe", value: readSubscribe(r, end, prev?.case === "subscribe" ? prev.value : newSubscribe()) };
    case 9: return { case: "subscribed", value: readSubscribed(r, end, prev?.case === "subscribed" ? prev.value : newSubscribed()) };
    case 10: return { case: "unsubscribe", value: readUnsubscribe(r, end, prev?.case === "unsubscribe" ? prev.value : { id: 0, channel: "" }) };
    case 11: return { case: "unsubscribed", value: readUnsubscribed(r, end, prev?.case === "unsubscribed" ? prev.value : newUnsubscribed()) };
    case 12: return { case: "publish", value: readPublish(r, end, prev?.case === "publish" ? prev.value : newPublish()) };
    case 13: return { case: "event", value: readEvent(r, end, prev?.case === "event" ? prev.value : newEvent()) };
    case 14: return { case: "presence", value: readPresence(r, end, prev?.case === "presence" ? prev.value : { channel: "", joined: [], left: [] }) };
    case 15: return { case: "push", value: readPush(r, end, prev?.case === "push" ? prev.value : { method: "", payload: EMPTY }) };
    case 16: return { case: "ack", value: readAck(r, end, prev?.case === "ack" ? prev.value : { channels: [] }) };
    case 17: return { case: "ping", value: readPing(r, end, prev?.case === "ping" ? prev.value : { sentAtMs: 0 }) };
    case 18: return { case: "pong", value: readPong(r, end, prev?.case === "pong" ? prev.value : { sentAtMs: 0 }) };
    case 19: return { case: "resume", value: readResume(r, end, prev?.case === "resume" ? prev.value : newResume()) };
    case 20: return { case: "resumed", value: readResumed(r, end, prev?.case === "resumed" ? prev.value : newResumed()) };
    case 21: return { case: "authRefresh", value: readAuthRefresh(r, end, prev?.case === "authRefresh" ? prev.value : { id: 0, token: "" }) };
    case 22: return { case: "authRefreshed", value: readAuthRefreshed(r, end, prev?.case === "authRefreshed" ? prev.value : { id: 0, expiresAtMs: 0 }) };
    case 23: return { case: "authExpiring", value: readAuthExpiring(r, end, prev?.case === "authExpiring" ? prev.value : { expiresAtMs: 0 }) };
    case 24: return { case: "goaway", value: readGoaway(r, end, prev?.case === "goaway" ? prev.value : { reason: "", reconnectAfterMs: 0, closeInMs: 0 }) };
    default: return { case: "cancel", value: readCancel(r, end, prev?.case === "cancel" ? prev.value : { id: 0 }) };
  }
}

const newWelcome = (): Welcome => ({
  version: 0,
  sessionId: "",
  resumeToken: "",
  pingIntervalMs: 0,
  pingTimeoutMs: 0,
  maxEnvelopeBytes: 0,
  expiresAtMs: 0,
  sessionLost: undefined,
  principal: "",
});
const newSessionLost = (): SessionLost => ({ previousSessionId: "", reason: "", lostFromSeq: 0, lostToSeq: 0 });
const newResume = (): Resume => ({ version: 0, sessionId: "", resumeToken: "", lastSeq: 0, client: "" });
const newResumed = (): Resumed => ({
  sessionId: "",
  lastSeq: 0,
  pingIntervalMs: 0,
  pingTimeoutMs: 0,
  maxEnvelopeBytes: 0,
  expiresAtMs: 0,
});
const newCall = (): Call => ({ id: 0, method: "", payload: EMPTY, timeoutMs: 0, idempotencyKey: "" });
const newError = (): ErrorFrame => ({ id: 0, code: 0, message: "", reason: "", retryAfterMs: 0 });
const newSubscribe = (): Subscribe => ({ id: 0, method: "", channel: "", recover: false, epoch: "", offset: 0 });
const newSubscribed = (): Subscribed => ({
  id: 0,
  channel: "",
  epoch: "",
  offset: 0,
  recovered: false,
  gap: undefined,
  members: [],
});
const newUnsubscribed = (): Unsubscribed => ({ id: 0, channel: "", code: 0, reason: "" });
const newPublish = (): Publish => ({ id: 0, method: "", channel: "", payload: EMPTY, idempotencyKey: "" });
const newEvent = (): Event => ({ channel: "", epoch: "", offset: 0, payload: EMPTY });

function readHello(r: WireReader, end: number, m: Hello): Hello {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.version = r.uint32(end); break;
      case 0x12: m.client = r.string(end, "Hello.client"); break;
      default: r.skip(tag, end, "Hello", 2);
    }
  }
  return m;
}

function readWelcome(r: WireReader, end: number, m: Welcome): Welcome {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.version = r.uint32(end); break;
      case 0x12: m.sessionId = r.string(end, "Welcome.sessionId"); break;
      case 0x1a: m.resumeToken = r.string(end, "Welcome.resumeToken"); break;
      case 0x20: m.pingIntervalMs = r.uint32(end); break;
      case 0x28: m.pingTimeoutMs = r.uint32(end); break;
      case 0x30: m.maxEnvelopeBytes = r.uint32(end); break;
      case 0x38: m.expiresAtMs = r.uint53(end); break;
      case 0x42: m.sessionLost = readSessionLost(r, r.limit(end), m.sessionLost ?? newSessionLost()); break;
      case 0x4a: m.principal = r.string(end, "Welcome.principal"); break;
      default: r.skip(tag, end, "Welcome", 9);
    }
  }
  return m;
}

function readSessionLost(r: WireReader, end: number, m: SessionLost): SessionLost {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.previousSessionId = r.string(end, "SessionLost.previousSessionId"); break;
      case 0x12: m.reason = r.string(end, "SessionLost.reason"); break;
      case 0x18: m.lostFromSeq = r.uint53(end); break;
      case 0x20: m.lostToSeq = r.uint53(end); break;
      default: r.skip(tag, end, "SessionLost", 4);
    }
  }
  return m;
}

function readResume(r: WireReader, end: number, m: Resume): Resume {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.version = r.uint32(end); break;
      case 0x12: m.sessionId = r.string(end, "Resume.sessionId"); break;
      case 0x1a: m.resumeToken = r.string(end, "Resume.resumeToken"); break;
      case 0x20: m.lastSeq = r.uint53(end); break;
      case 0x2a: m.client = r.string(end, "Resume.client"); break;
      default: r.skip(tag, end, "Resume", 5);
    }
  }
  return m;
}

function readResumed(r: WireReader, end: number, m: Resumed): Resumed {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.sessionId = r.string(end, "Resumed.sessionId"); break;
      case 0x10: m.lastSeq = r.uint53(end); break;
      case 0x18: m.pingIntervalMs = r.uint32(end); break;
      case 0x20: m.pingTimeoutMs = r.uint32(end); break;
      case 0x28: m.maxEnvelopeBytes = r.uint32(end); break;
      case 0x30: m.expiresAtMs = r.uint53(end); break;
      default: r.skip(tag, end, "Resumed", 6);
    }
  }
  return m;
}

function readCall(r: WireReader, end: number, m: Call): Call {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.method = r.string(end, "Call.method"); break;
      case 0x1a: m.payload = r.bytes(end); break;
      case 0x20: m.timeoutMs = r.uint32(end); break;
      case 0x2a: m.idempotencyKey = r.string(end, "Call.idempotencyKey"); break;
      default: r.skip(tag, end, "Call", 5);
    }
  }
  return m;
}

function readReply(r: WireReader, end: number, m: Reply): Reply {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.payload = r.bytes(end); break;
      default: r.skip(tag, end, "Reply", 2);
    }
  }
  return m;
}

function readError(r: WireReader, end: number, m: ErrorFrame): ErrorFrame {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x10: m.code = r.int32(end); break;
      case 0x1a: m.message = r.string(end, "Error.message"); break;
      case 0x22: m.reason = r.string(end, "Error.reason"); break;
      case 0x28: m.retryAfterMs = r.uint32(end); break;
      default: r.skip(tag, end, "Error", 5);
    }
  }
  return m;
}

function readCancel(r: WireReader, end: number, m: Cancel): Cancel {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === 0x08) m.id = r.uint32(end);
    else r.skip(tag, end, "Cancel", 1);
  }
  return m;
}

function readSubscribe(r: WireReader, end: number, m: Subscribe): Subscribe {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.method = r.string(end, "Subscribe.method"); break;
      case 0x1a: m.channel = r.string(end, "Subscribe.channel"); break;
      case 0x20: m.recover = r.bool(end); break;
      case 0x2a: m.epoch = r.string(end, "Subscribe.epoch"); break;
      case 0x30: m.offset = r.uint53(end); break;
      default: r.skip(tag, end, "Subscribe", 6);
    }
  }
  return m;
}

function readSubscribed(r: WireReader, end: number, m: Subscribed): Subscribed {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.channel = r.string(end, "Subscribed.channel"); break;
      case 0x1a: m.epoch = r.string(end, "Subscribed.epoch"); break;
      case 0x20: m.offset = r.uint53(end); break;
      case 0x28: m.recovered = r.bool(end); break;
      case 0x32: m.gap = readGap(r, r.limit(end), m.gap ?? { fromOffset: 0, toOffset: 0, reason: "" }); break;
      case 0x3a: readMemberInto(r, end, m.members, "Subscribed.members"); break;
      default: r.skip(tag, end, "Subscribed", 7);
    }
  }
  return m;
}

function readGap(r: WireReader, end: number, m: Gap): Gap {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.fromOffset = r.uint53(end); break;
      case 0x10: m.toOffset = r.uint53(end); break;
      case 0x1a: m.reason = r.string(end, "Gap.reason"); break;
      default: r.skip(tag, end, "Gap", 3);
    }
  }
  return m;
}

/** Reads one length-prefixed Member and appends it to `list`. */
function readMemberInto(r: WireReader, outerEnd: number, list: Member[], field: string): void {
  r.checkCount(list.length, field);
  const end = r.limit(outerEnd);
  const m: Member = { clientId: "", principal: "" };
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.clientId = r.string(end, "Member.clientId"); break;
      case 0x12: m.principal = r.string(end, "Member.principal"); break;
      default: r.skip(tag, end, "Member", 2);
    }
  }
  list.push(m);
}

function readUnsubscribe(r: WireReader, end: number, m: Unsubscribe): Unsubscribe {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.channel = r.string(end, "Unsubscribe.channel"); break;
      default: r.skip(tag, end, "Unsubscribe", 2);
    }
  }
  return m;
}

function readUnsubscribed(r: WireReader, end: number, m: Unsubscribed): Unsubscribed {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.channel = r.string(end, "Unsubscribed.channel"); break;
      case 0x18: m.code = r.int32(end); break;
      case 0x22: m.reason = r.string(end, "Unsubscribed.reason"); break;
      default: r.skip(tag, end, "Unsubscribed", 4);
    }
  }
  return m;
}

function readPublish(r: WireReader, end: number, m: Publish): Publish {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.method = r.string(end, "Publish.method"); break;
      case 0x1a: m.channel = r.string(end, "Publish.channel"); break;
      case 0x22: m.payload = r.bytes(end); break;
      case 0x2a: m.idempotencyKey = r.string(end, "Publish.idempotencyKey"); break;
      default: r.skip(tag, end, "Publish", 5);
    }
  }
  return m;
}

function readEvent(r: WireReader, end: number, m: Event): Event {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.channel = r.string(end, "Event.channel"); break;
      case 0x12: m.epoch = r.string(end, "Event.epoch"); break;
      case 0x18: m.offset = r.uint53(end); break;
      case 0x22: m.payload = r.bytes(end); break;
      default: r.skip(tag, end, "Event", 4);
    }
  }
  return m;
}

function readPresence(r: WireReader, end: number, m: Presence): Presence {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.channel = r.string(end, "Presence.channel"); break;
      case 0x12: readMemberInto(r, end, m.joined, "Presence.joined"); break;
      case 0x1a: readMemberInto(r, end, m.left, "Presence.left"); break;
      default: r.skip(tag, end, "Presence", 3);
    }
  }
  return m;
}

function readPush(r: WireReader, end: number, m: Push): Push {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.method = r.string(end, "Push.method"); break;
      case 0x12: m.payload = r.bytes(end); break;
      default: r.skip(tag, end, "Push", 2);
    }
  }
  return m;
}

function readAck(r: WireReader, end: number, m: Ack): Ack {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === 0x0a) {
      r.checkCount(m.channels.length, "Ack.channels");
      m.channels.push(readPosition(r, r.limit(end), { channel: "", epoch: "", offset: 0 }));
    } else {
      r.skip(tag, end, "Ack", 1);
    }
  }
  return m;
}

function readPosition(r: WireReader, end: number, m: ChannelPosition): ChannelPosition {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.channel = r.string(end, "ChannelPosition.channel"); break;
      case 0x12: m.epoch = r.string(end, "ChannelPosition.epoch"); break;
      case 0x18: m.offset = r.uint53(end); break;
      default: r.skip(tag, end, "ChannelPosition", 3);
    }
  }
  return m;
}

function readPing(r: WireReader, end: number, m: Ping): Ping {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === 0x08) m.sentAtMs = r.uint53(end);
    else r.skip(tag, end, "Ping", 1);
  }
  return m;
}

function readPong(r: WireReader, end: number, m: Pong): Pong {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === 0x08) m.sentAtMs = r.uint53(end);
    else r.skip(tag, end, "Pong", 1);
  }
  return m;
}

function readAuthRefresh(r: WireReader, end: number, m: AuthRefresh): AuthRefresh {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x12: m.token = r.string(end, "AuthRefresh.token"); break;
      default: r.skip(tag, end, "AuthRefresh", 2);
    }
  }
  return m;
}

function readAuthRefreshed(r: WireReader, end: number, m: AuthRefreshed): AuthRefreshed {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x08: m.id = r.uint32(end); break;
      case 0x10: m.expiresAtMs = r.uint53(end); break;
      default: r.skip(tag, end, "AuthRefreshed", 2);
    }
  }
  return m;
}

function readAuthExpiring(r: WireReader, end: number, m: AuthExpiring): AuthExpiring {
  while (r.pos < end) {
    const tag = r.tag(end);
    if (tag === 0x08) m.expiresAtMs = r.uint53(end);
    else r.skip(tag, end, "AuthExpiring", 1);
  }
  return m;
}

function readGoaway(r: WireReader, end: number, m: Goaway): Goaway {
  while (r.pos < end) {
    const tag = r.tag(end);
    switch (tag) {
      case 0x0a: m.reason = r.string(end, "Goaway.reason"); break;
      case 0x10: m.reconnectAfterMs = r.uint32(end); break;
      case 0x18: m.closeInMs = r.uint32(end); break;
      default: r.skip(tag, end, "Goaway", 3);
    }
  }
  return m;
}
