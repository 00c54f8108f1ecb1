/**
 * Prints canonical test-vector blocks for PROTOCOL.md: one representative envelope of every
 * frame kind, plus variants that exercise optional messages, repeated fields, enums, large
 * 64-bit values and non-ASCII text. Both the json and the hex come from protobuf-es.
 *
 *     npx tsx test/wire/print-vectors.ts
 */
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  RoomEventsResponseSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
  NoticesResponseSchema,
  TypingResponseSchema,
} from "../../generated/acme/chat/v1/chat_pb.js";
import { Code, EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";
import { formatVector } from "./vectors.js";

type Init = MessageInitShape<typeof EnvelopeSchema>;

const SEND = "acme.chat.v1.ChatService/SendMessage";
const ROOM_EVENTS = "acme.chat.v1.ChatService/RoomEvents";
const TYPING = "acme.chat.v1.ChatService/Typing";
const NOTICES = "acme.chat.v1.ChatService/Notices";
/** A W3C trace context, as metadata carries it (PROTOCOL.md 3.8). */
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/** 2026-01-01T00:00:00Z, the clock of every vector. */
const T0 = 1767225600000n;

const sendRequest = toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { roomId: "lobby", text: "hi" }));
const sendResponse = toBinary(
  SendMessageResponseSchema,
  create(SendMessageResponseSchema, { messageId: "m_42", sentAtMs: T0 + 1500n }),
);
const roomEvent = toBinary(
  RoomEventsResponseSchema,
  create(RoomEventsResponseSchema, { messageId: "m_42", author: "alice", text: "hi", sentAtMs: T0 + 1500n }),
);
const typing = toBinary(TypingResponseSchema, create(TypingResponseSchema, { user: "bob", typing: true }));
const notice = toBinary(NoticesResponseSchema, create(NoticesResponseSchema, { text: "Maintenance at 02:00 UTC", roomId: "" }));

const vectors: [string, Init][] = [
  ["hello", { frame: { case: "hello", value: { version: 1, client: "protocast-js/0.1.0" } } }],
  [
    "welcome",
    {
      frame: {
        case: "welcome",
        value: {
          version: 1,
          sessionId: "s_7Hq2",
          resumeToken: "rt_9fK3xQ",
          pingIntervalMs: 25000,
          pingTimeoutMs: 10000,
          maxEnvelopeBytes: 65536,
          expiresAtMs: T0 + 3_600_000n,
          principal: "user:alice",
        },
      },
    },
  ],
  [
    "welcome-session-lost",
    {
      frame: {
        case: "welcome",
        value: {
          version: 1,
          sessionId: "s_8Kp4",
          resumeToken: "rt_2mW8zL",
          pingIntervalMs: 25000,
          pingTimeoutMs: 10000,
          maxEnvelopeBytes: 65536,
          sessionLost: { previousSessionId: "s_7Hq2", reason: "expired", lostFromSeq: 12n, lostToSeq: 15n },
          principal: "user:alice",
        },
      },
    },
  ],
  [
    "call-with-idempotency-key",
    {
      seq: 1n,
      frame: {
        case: "call",
        value: { id: 7, method: SEND, payload: sendRequest, timeoutMs: 5000, idempotencyKey: "k-1" },
      },
    },
  ],
  ["reply", { seq: 1n, ackSeq: 1n, frame: { case: "reply", value: { id: 7, payload: sendResponse } } }],
  [
    "error",
    {
      seq: 2n,
      ackSeq: 2n,
      frame: {
        case: "error",
        value: {
          id: 8,
          code: Code.RESOURCE_EXHAUSTED,
          message: "rate limit of 20 calls per second exceeded",
          reason: "rate_limited",
          retryAfterMs: 250,
        },
      },
    },
  ],
  ["cancel", { seq: 3n, frame: { case: "cancel", value: { id: 9 } } }],
  [
    "subscribe-recover",
    {
      seq: 4n,
      frame: {
        case: "subscribe",
        value: { id: 10, method: ROOM_EVENTS, channel: "room/lobby", recover: true, epoch: "e7f3", offset: 41n },
      },
    },
  ],
  [
    "subscribed-gap-members",
    {
      seq: 3n,
      ackSeq: 4n,
      frame: {
        case: "subscribed",
        value: {
          id: 10,
          channel: "room/lobby",
          epoch: "e7f3",
          offset: 57n,
          gap: { fromOffset: 42n, toOffset: 49n, reason: "history_expired" },
          members: [
            { clientId: "c_1", principal: "user:alice" },
            { clientId: "c_2", principal: "user:bob" },
          ],
        },
      },
    },
  ],
  ["unsubscribe", { seq: 5n, frame: { case: "unsubscribe", value: { id: 11, channel: "room/lobby" } } }],
  [
    "unsubscribed",
    {
      seq: 4n,
      frame: {
        case: "unsubscribed",
        value: { id: 0, channel: "room/lobby", code: Code.PERMISSION_DENIED, reason: "kicked" },
      },
    },
  ],
  [
    "publish",
    {
      seq: 6n,
      frame: { case: "publish", value: { id: 12, method: TYPING, channel: "typing/lobby", payload: typing } },
    },
  ],
  [
    "event",
    { frame: { case: "event", value: { channel: "room/lobby", epoch: "e7f3", offset: 58n, payload: roomEvent } } },
  ],
  [
    "presence",
    {
      frame: {
        case: "presence",
        value: { channel: "room/café", joined: [{ clientId: "c_3", principal: "user:zoë" }], left: [{ clientId: "c_2", principal: "user:bob" }] },
      },
    },
  ],
  ["push", { seq: 5n, frame: { case: "push", value: { method: NOTICES, payload: notice } } }],
  [
    "ack",
    {
      ackSeq: 5n,
      frame: { case: "ack", value: { channels: [{ channel: "room/lobby", epoch: "e7f3", offset: 58n }] } },
    },
  ],
  ["ack-empty", { ackSeq: 11n, frame: { case: "ack", value: {} } }],
  ["ping", { frame: { case: "ping", value: { sentAtMs: T0 + 25_000n } } }],
  ["ping-max-safe-integer", { frame: { case: "ping", value: { sentAtMs: 9007199254740991n } } }],
  ["pong", { frame: { case: "pong", value: { sentAtMs: T0 + 25_000n } } }],
  [
    "resume",
    {
      frame: {
        case: "resume",
        value: { version: 1, sessionId: "s_7Hq2", resumeToken: "rt_9fK3xQ", lastSeq: 14n, client: "protocast-js/0.1.0" },
      },
    },
  ],
  [
    "resumed",
    {
      ackSeq: 6n,
      frame: {
        case: "resumed",
        value: {
          sessionId: "s_7Hq2",
          lastSeq: 6n,
          pingIntervalMs: 25000,
          pingTimeoutMs: 10000,
          maxEnvelopeBytes: 65536,
          expiresAtMs: T0 + 3_600_000n,
        },
      },
    },
  ],
  ["auth-refresh", { seq: 7n, frame: { case: "authRefresh", value: { id: 13, token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln" } } }],
  ["auth-refreshed", { seq: 6n, ackSeq: 7n, frame: { case: "authRefreshed", value: { id: 13, expiresAtMs: T0 + 7_200_000n } } }],
  ["auth-expiring", { frame: { case: "authExpiring", value: { expiresAtMs: T0 + 3_600_000n } } }],
  ["goaway", { frame: { case: "goaway", value: { reason: "server restarting", reconnectAfterMs: 1500, closeInMs: 10000 } } }],
  [
    "call-metadata",
    {
      seq: 12n,
      frame: {
        case: "call",
        value: { id: 12, method: "acme.chat.v1.ChatService/ListRooms", timeoutMs: 2000, metadata: { entries: [{ key: "traceparent", value: TRACEPARENT }, { key: "tenant", value: "acme" }] } },
      },
    },
  ],
  [
    "event-metadata",
    { frame: { case: "event", value: { channel: "room/lobby", epoch: "e7f3", offset: 59n, payload: roomEvent, metadata: { entries: [{ key: "traceparent", value: TRACEPARENT }] } } } },
  ],
];

console.log(vectors.map(([name, init]) => formatVector(name, create(EnvelopeSchema, init))).join("\n\n"));
