/**
 * fast-check arbitraries for every envelope frame, biased towards the values where encodings
 * change shape: varint byte boundaries, the largest uint32 and 53-bit values, empty and
 * multi-byte strings (including astral characters and a leading BOM), empty and large bytes,
 * present and absent optional messages, empty and long repeated fields.
 */
import { fc } from "@fast-check/vitest";
import type { ChannelPosition, Envelope, Frame, FrameCase, Gap, Member, Metadata, SessionLost } from "../../runtime/wire/envelope.js";

/** A record with a plain prototype, so that decoded values compare strictly equal to it. */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

export const uint32 = fc.oneof(
  fc.constantFrom(0, 1, 127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }),
);

export const uint53 = fc.oneof(
  fc.constantFrom(0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35, 2 ** 49, 2 ** 53 - 1),
  fc.maxSafeNat(),
);

/** Enum fields are open int32s on the wire; negative values take 10 bytes. */
export const enumValue = fc.oneof(
  fc.integer({ min: 0, max: 16 }),
  fc.constantFrom(-1, -(2 ** 31), 2 ** 31 - 1),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

export const text = fc.oneof(
  fc.constant(""),
  fc.string({ unit: "grapheme-ascii", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "binary", minLength: 40, maxLength: 120 }),
  // Past 127 bytes the length prefix takes two bytes; "é" x 100 is 100 code units but 200 bytes.
  fc.constantFrom("é", "日本語", "😀🎉", "\uFEFFbom", "a".repeat(200), "é".repeat(100), "😀".repeat(40)),
);

export const bytes = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ minLength: 120, maxLength: 300 }),
);

const member: fc.Arbitrary<Member> = rec({ clientId: text, principal: text });

export const members = fc.oneof(
  fc.constant<Member[]>([]),
  fc.array(member, { maxLength: 4 }),
  fc.array(member, { minLength: 20, maxLength: 40 }),
);

const gap: fc.Arbitrary<Gap> = rec({ fromOffset: uint53, toOffset: uint53, reason: text });

const sessionLost: fc.Arbitrary<SessionLost> = rec({
  previousSessionId: text,
  reason: text,
  lostFromSeq: uint53,
  lostToSeq: uint53,
});

/** Absent, empty, or a few entries: the codec does not judge keys (the session layers do). */
const metadata: fc.Arbitrary<Metadata | undefined> = fc.option(
  rec<Metadata>({ entries: fc.array(rec({ key: text, value: text }), { maxLength: 6 }) }),
  { nil: undefined },
);

const position = rec({ channel: text, epoch: text, offset: uint53 });

type FrameValue<K extends FrameCase> = Extract<Frame, { case: K }>["value"];

/** One arbitrary per frame kind, keyed like Envelope's oneof. */
export const frameValues: { [K in FrameCase]: fc.Arbitrary<FrameValue<K>> } = {
  hello: rec({ version: uint32, client: text }),
  welcome: rec({
    version: uint32,
    sessionId: text,
    resumeToken: text,
    pingIntervalMs: uint32,
    pingTimeoutMs: uint32,
    maxEnvelopeBytes: uint32,
    expiresAtMs: uint53,
    sessionLost: fc.option(sessionLost, { nil: undefined }),
    principal: text,
  }),
  call: rec({ id: uint32, method: text, payload: bytes, timeoutMs: uint32, idempotencyKey: text, metadata }),
  reply: rec({ id: uint32, payload: bytes }),
  error: rec({ id: uint32, code: enumValue, message: text, reason: text, retryAfterMs: uint32 }),
  subscribe: rec({ id: uint32, method: text, channel: text, recover: fc.boolean(), epoch: text, offset: uint53 }),
  subscribed: rec({
    id: uint32,
    channel: text,
    epoch: text,
    offset: uint53,
    recovered: fc.boolean(),
    gap: fc.option(gap, { nil: undefined }),
    members,
  }),
  unsubscribe: rec({ id: uint32, channel: text }),
  unsubscribed: rec({ id: uint32, channel: text, code: enumValue, reason: text }),
  publish: rec({ id: uint32, method: text, channel: text, payload: bytes, idempotencyKey: text, metadata }),
  event: rec({ channel: text, epoch: text, offset: uint53, payload: bytes, metadata }),
  presence: rec({ channel: text, joined: members, left: members }),
  push: rec({ method: text, payload: bytes }),
  ack: rec({ channels: fc.oneof(fc.constant<ChannelPosition[]>([]), fc.array(position, { maxLength: 30 })) }),
  ping: rec({ sentAtMs: uint53 }),
  pong: rec({ sentAtMs: uint53 }),
  resume: rec({ version: uint32, sessionId: text, resumeToken: text, lastSeq: uint53, client: text }),
  resumed: rec({
    sessionId: text,
    lastSeq: uint53,
    pingIntervalMs: uint32,
    pingTimeoutMs: uint32,
    maxEnvelopeBytes: uint32,
    expiresAtMs: uint53,
  }),
  authRefresh: rec({ id: uint32, token: text }),
  authRefreshed: rec({ id: uint32, expiresAtMs: uint53 }),
  authExpiring: rec({ expiresAtMs: uint53 }),
  goaway: rec({ reason: text, reconnectAfterMs: uint32, closeInMs: uint32 }),
  cancel: rec({ id: uint32 }),
};

export const frameCases = Object.keys(frameValues) as FrameCase[];

/** Frames of one kind. */
export function frameOf<K extends FrameCase>(kind: K): fc.Arbitrary<Frame> {
  const values: fc.Arbitrary<FrameValue<K>> = frameValues[kind];
  return values.map((value) => ({ case: kind, value }) as Frame);
}

export const frame: fc.Arbitrary<Frame> = fc.oneof(...frameCases.map((kind) => frameOf(kind)));

export function envelopeWith(frames: fc.Arbitrary<Frame>): fc.Arbitrary<Envelope> {
  return rec({ seq: uint53, ackSeq: uint53, frame: frames });
}

export const envelope: fc.Arbitrary<Envelope> = envelopeWith(frame);
