/**
 * The conformance cases: one behaviour of PROTOCOL.md each, driven through raw envelopes
 * against the conformance service (section 18). The list is plain data plus small functions
 * on purpose, so that it can be ported to another language case by case.
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CountRequestSchema,
  CountResponseSchema,
  CrowdRequestSchema,
  EchoRequestSchema,
  GoawayRequestSchema,
  KickRequestSchema,
  PublishRequestSchema,
  PushRequestSchema,
  ReliableResponseSchema,
  SleepRequestSchema,
} from "../../generated/protocast/conformance/v1/conformance_pb.js";
import { ChannelPositionSchema, Code, EnvelopeSchema, type Envelope } from "../../generated/protocast/v1/envelope_pb.js";
import { Peer, encode, type FrameOf } from "./peer.js";

export interface CaseContext {
  /** WebSocket URL of the conformance endpoint. */
  readonly url: string;
  /** A principal name no other case uses. */
  readonly name: string;
}

export interface Case {
  /** The PROTOCOL.md section the case checks. */
  readonly section: string;
  readonly title: string;
  run(ctx: CaseContext): Promise<void>;
}

const SVC = "protocast.conformance.v1.ConformanceService";
const M = (m: string): string => `${SVC}/${m}`;

/** The limits the conformance server announces or documents (PROTOCOL.md 18.1). */
const MAX_ENVELOPE = 16_384;
const GRACE_MS = 4_000;
const ACK_TIMEOUT_MS = 3_000;

export class CaseFailure extends Error {}

function expect(cond: boolean, what: string): asserts cond {
  if (!cond) throw new CaseFailure(what);
}

function equal<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v));
  const e = JSON.stringify(expected, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v));
  if (a !== e) throw new CaseFailure(`${what}: expected ${e}, got ${a}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function closesWith(peer: Peer, code: number, timeoutMs = 5_000): Promise<void> {
  const c = await peer.closes(timeoutMs);
  equal(c.code, code, `close code (reason "${c.reason}")`);
}

function errorOf(frame: Envelope["frame"], code: Code, reason: string | undefined, what: string): void {
  expect(frame.case === "error", `${what}: expected an Error, got ${frame.case ?? "nothing"}`);
  equal(Code[frame.value.code], Code[code], `${what}: code`);
  if (reason !== undefined) equal(frame.value.reason, reason, `${what}: reason`);
}

const events = (p: Peer, channel: string): FrameOf<"event">[] =>
  p.received.flatMap((e) => (e.frame.case === "event" && e.frame.value.channel === channel ? [e.frame.value] : []));

/** Plain HTTP to the endpoint: status and headers. */
function http(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const u = new URL(url.replace(/^ws/, "http"));
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on("error", reject);
    req.end();
  });
}

const wsKey = (): string => randomBytes(16).toString("base64");

/** Publishes `count` events to `kind`/`name` through the service and waits until the last one is out. */
async function publish(p: Peer, kind: string, name: string, count: number, size = 0, extra: { intervalMs?: number; keys?: number } = {}): Promise<void> {
  const f = await p.ask(M("Publish"), encode(PublishRequestSchema, { kind, name, count, size, intervalMs: extra.intervalMs ?? 0, keys: extra.keys ?? 0 }));
  expect(f.case === "reply", `Publish answered ${f.case}`);
}

export const cases: Case[] = [
  // ---- 2. Transport and handshake ------------------------------------------------------
  {
    section: "2.1",
    title: "a plain HTTP request without Upgrade gets 426 with Upgrade: websocket",
    async run({ url }) {
      const r = await http(url, {});
      equal(r.status, 426, "status");
      equal(String(r.headers["upgrade"]).toLowerCase(), "websocket", "Upgrade header");
    },
  },
  {
    section: "2.2",
    title: "an upgrade that offers no protocast.v<N> subprotocol gets 400",
    async run({ url, name }) {
      const r = await http(url, { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": wsKey(), authorization: `Bearer ${name}` });
      equal(r.status, 400, "status");
    },
  },
  {
    section: "2.2",
    title: "an upgrade that offers only an unknown version is accepted, then closed with 4501",
    async run({ url, name }) {
      const p = await Peer.open(url, { token: name, protocols: ["protocast.v9"] });
      equal(p.ws.protocol, "protocast.v9", "selected subprotocol");
      await closesWith(p, 4501);
      equal(p.received.length, 0, "envelopes before the close");
    },
  },
  {
    section: "2.2",
    title: "the 101 selects protocast.v1 and never the credential value",
    async run({ url, name }) {
      const token = Buffer.from(name).toString("base64url");
      const p = await Peer.open(url, { protocols: ["protocast.v1", `protocast.token.${token}`] });
      equal(p.ws.protocol, "protocast.v1", "selected subprotocol");
      p.send({ case: "hello", value: { version: 1 } });
      equal((await p.next("welcome")).principal, name, "principal from the subprotocol credential");
      p.close();
    },
  },
  {
    section: "2.4",
    title: "a missing credential: 101, then close 4502 before any envelope",
    async run({ url }) {
      const p = await Peer.open(url);
      const c = await p.closes();
      equal(c.code, 4502, "close code");
      expect(c.reason.startsWith("unauthenticated"), `reason "${c.reason}" starts with unauthenticated`);
      equal(p.received.length, 0, "envelopes");
    },
  },
  {
    section: "2.4",
    title: "a principal that may not connect: close 4503",
    async run({ url }) {
      const p = await Peer.open(url, { token: "banned" });
      await closesWith(p, 4503);
    },
  },
  {
    section: "2.6",
    title: "no Hello within the handshake timeout: close 4003",
    async run({ url, name }) {
      const p = await Peer.open(url, { token: name });
      await closesWith(p, 4003, 4_000);
    },
  },
  {
    section: "2.7",
    title: "a text message: close 1003",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.sendBytes("hello");
      await closesWith(peer, 1003);
    },
  },
  {
    section: "2.7",
    title: "a message over max_envelope_bytes: close 1009",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: name });
      equal(welcome.maxEnvelopeBytes, MAX_ENVELOPE, "max_envelope_bytes");
      peer.call(M("Echo"), new Uint8Array(MAX_ENVELOPE));
      await closesWith(peer, 1009);
    },
  },
  {
    section: "2.8",
    title: "Hello is answered by Welcome with every field set",
    async run({ url, name }) {
      const { peer, welcome: w } = await Peer.hello(url, { token: name });
      equal(w.version, 1, "version");
      expect(w.sessionId.length > 0 && w.sessionId.length <= 128, "session_id of 1-128 bytes");
      expect(w.resumeToken.length > 0, "a resume token");
      equal([w.pingIntervalMs, w.pingTimeoutMs], [2_000, 1_000], "ping interval and timeout");
      equal(w.principal, name, "principal");
      equal(w.sessionLost, undefined, "session_lost");
      peer.close();
    },
  },
  {
    section: "2.8",
    title: "a first envelope other than Hello or Resume: close 4500",
    async run({ url, name }) {
      const p = await Peer.open(url, { token: name });
      p.send({ case: "ping", value: { sentAtMs: 1n } });
      await closesWith(p, 4500);
    },
  },
  {
    section: "2.8",
    title: "Hello with version 2: close 4501",
    async run({ url, name }) {
      const p = await Peer.open(url, { token: name });
      p.send({ case: "hello", value: { version: 2 } });
      await closesWith(p, 4501);
    },
  },
  {
    section: "2.8",
    title: "a second Hello: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.send({ case: "hello", value: { version: 1 } });
      await closesWith(peer, 4500);
    },
  },
  // ---- 3. The envelope -----------------------------------------------------------------
  {
    section: "3.1",
    title: "an envelope without a frame: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.sendBytes(new Uint8Array([0x10, 0x00]));
      await closesWith(peer, 4500);
    },
  },
  {
    section: "3.2",
    title: "a group, a uint64 of 2^53 and invalid UTF-8 each close 4500",
    async run({ url, name }) {
      const bad = [
        new Uint8Array([0x1b, 0x1c]), // field 3 as a group
        new Uint8Array([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x8a, 0x01, 0x00]), // seq 2^53
        new Uint8Array([0x1a, 0x04, 0x08, 0x01, 0x12, 0x01, 0xff]), // hello.client = 0xff
      ];
      for (const bytes of bad) {
        const { peer } = await Peer.hello(url, { token: name });
        peer.sendBytes(bytes);
        await closesWith(peer, 4500);
      }
    },
  },
  {
    section: "3.3",
    title: "a request id already awaiting its answer: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const req = encode(SleepRequestSchema, { durationMs: 1_000 });
      peer.call(M("Sleep"), req, { id: 7 });
      peer.call(M("Sleep"), req, { id: 7 });
      await closesWith(peer, 4500);
    },
  },
  {
    section: "3.5",
    title: "a Call is answered by a Reply with its id, sequenced, acknowledging the Call",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const id = peer.call(M("Echo"), encode(EchoRequestSchema, { size: 3 }));
      const env = await peer.next((e) => e.frame.case === "reply");
      equal([env.seq, env.ackSeq], [1n, 1n], "seq and ack_seq");
      expect(env.frame.case === "reply", "reply");
      equal(env.frame.value.id, id, "id");
      peer.close();
    },
  },
  {
    section: "3.5",
    title: "unknown method: UNIMPLEMENTED unknown_method; bad payload: INVALID_ARGUMENT bad_payload",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      errorOf(await peer.ask(M("Nope"), new Uint8Array()), Code.UNIMPLEMENTED, "unknown_method", "unknown method");
      errorOf(await peer.ask(M("Echo"), new Uint8Array([0x0a, 0x05])), Code.INVALID_ARGUMENT, "bad_payload", "bad payload");
      peer.close();
    },
  },
  {
    section: "3.5",
    title: "the deadline passes first: DEADLINE_EXCEEDED",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      errorOf(await peer.ask(M("Sleep"), encode(SleepRequestSchema, { durationMs: 3_000 }), { timeoutMs: 100 }), Code.DEADLINE_EXCEEDED, undefined, "Sleep");
      peer.close();
    },
  },
  {
    section: "3.5",
    title: "Cancel before the answer: CANCELED",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const id = peer.call(M("Sleep"), encode(SleepRequestSchema, { durationMs: 3_000 }));
      await sleep(50);
      peer.send({ case: "cancel", value: { id } });
      const f = (await peer.next((e) => e.frame.case === "error" && e.frame.value.id === id)).frame;
      errorOf(f, Code.CANCELED, undefined, "Sleep");
      peer.close();
    },
  },
  {
    section: "3.5",
    title: "a Reply larger than max_envelope_bytes becomes RESOURCE_EXHAUSTED reply_too_large",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      errorOf(await peer.ask(M("Echo"), encode(EchoRequestSchema, { size: MAX_ENVELOPE + 1 })), Code.RESOURCE_EXHAUSTED, "reply_too_large", "Echo");
      equal(await peer.staysOpen(50), true, "connection open");
      peer.close();
    },
  },
  {
    section: "3.7",
    title: "seq 0 on a Call: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.send({ case: "call", value: { id: 1, method: M("Echo") } }, 0);
      await closesWith(peer, 4500);
    },
  },
  {
    section: "3.7",
    title: "a seq on a Ping: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.send({ case: "ping", value: { sentAtMs: 1n } }, 1);
      await closesWith(peer, 4500);
    },
  },
  {
    section: "3.7",
    title: "a sequence gap: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.send({ case: "call", value: { id: 1, method: M("Echo") } }, 2);
      await closesWith(peer, 4500);
    },
  },
  {
    section: "3.7",
    title: "ack_seq above the server's last seq: close 4500",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.sendEnvelope({ ackSeq: 5n, frame: { case: "ack", value: {} } });
      await closesWith(peer, 4500);
    },
  },
  {
    section: "3.8",
    title: "metadata: a Publish's metadata reaches the subscriber in Event.metadata; bad metadata is INVALID_ARGUMENT bad_metadata and the connection stays",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `reliable/${name}`;
      peer.subscribe(M("Reliable"), channel);
      await peer.next("subscribed");
      const metadata = { entries: [{ key: "traceparent", value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, { key: "x-note", value: "é" }] };
      const pub = async (entries: { key: string; value: string }[]): Promise<Envelope["frame"]> => {
        const id = peer.takeId();
        peer.sendSequenced({ case: "publish", value: { id, method: M("Reliable"), channel, payload: encode(ReliableResponseSchema, { n: 1 }), metadata: { entries } } });
        return (await peer.next((e) => (e.frame.case === "reply" || e.frame.case === "error") && e.frame.value.id === id)).frame;
      };
      expect((await pub(metadata.entries)).case === "reply", "the publish with metadata is confirmed");
      const ev = (await peer.next("event")) as FrameOf<"event">;
      // A server that traces puts its own span in traceparent; the other entries pass unchanged.
      const got = (ev.metadata?.entries ?? []).map((e) => [e.key, e.value]);
      equal(got.filter(([k]) => k === "x-note"), [["x-note", "é"]], "Event.metadata's own entry");
      expect(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(got.find(([k]) => k === "traceparent")?.[1] ?? ""), "Event.metadata carries a traceparent");
      errorOf(await pub([{ key: "a", value: "1" }, { key: "a", value: "2" }]), Code.INVALID_ARGUMENT, "bad_metadata", "a duplicate key");
      errorOf(await pub([{ key: "Upper", value: "1" }]), Code.INVALID_ARGUMENT, "bad_metadata", "an uppercase key");
      errorOf(await pub([{ key: "big", value: "x".repeat(1025) }]), Code.INVALID_ARGUMENT, "bad_metadata", "a value over 1,024 bytes");
      expect((await peer.ask(M("Echo"), encode(EchoRequestSchema, { size: 1 }))).case === "reply", "a later call on the same connection is answered");
      peer.close();
    },
  },
  // ---- 4. Sequence numbers and acknowledgements -----------------------------------------
  {
    section: "4.3",
    title: "a received Call is acknowledged within the ack delay, before its Reply",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const sent = Date.now();
      peer.call(M("Sleep"), encode(SleepRequestSchema, { durationMs: 1_000 }));
      const ack = await peer.next((e) => e.frame.case === "ack" && e.ackSeq === 1n, 900);
      expect(Date.now() - sent < 900, "acknowledged before the Reply");
      equal(ack.seq, 0n, "a standalone Ack is unsequenced");
      peer.close();
    },
  },
  {
    section: "4.5",
    title: "frames left unacknowledged for ping interval + timeout: close 4001",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name, autoAck: false });
      peer.call(M("Echo"), encode(EchoRequestSchema, { size: 1 }));
      await peer.next("reply");
      const start = Date.now();
      const c = await peer.closes(ACK_TIMEOUT_MS + 2_000);
      equal(c.code, 4001, "close code");
      expect(Date.now() - start >= ACK_TIMEOUT_MS - 100, "not before the ack timeout");
    },
  },
  // ---- 5. Idempotency keys ------------------------------------------------------------------
  {
    section: "5.3",
    title: "an exactly-once call retried with its key returns the first outcome",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const value = (f: Envelope["frame"]): number => {
        expect(f.case === "reply", `Count answered ${f.case}`);
        return fromBinary(CountResponseSchema, f.value.payload).value;
      };
      const req = encode(CountRequestSchema, {});
      const first = value(await peer.ask(M("Count"), req, { key: `${name}-k1` }));
      equal(value(await peer.ask(M("Count"), req, { key: `${name}-k1` })), first, "the retry's value");
      equal(value(await peer.ask(M("Count"), req, { key: `${name}-k2` })), first + 1, "a new key's value");
      peer.close();
    },
  },
  {
    section: "5.3",
    title: "keys: missing, too long and reused for another payload are refused",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const req = encode(CountRequestSchema, {});
      errorOf(await peer.ask(M("Count"), req), Code.INVALID_ARGUMENT, "idempotency_key_required", "no key");
      errorOf(await peer.ask(M("Count"), req, { key: "k".repeat(129) }), Code.INVALID_ARGUMENT, "idempotency_key_too_long", "129-byte key");
      await peer.ask(M("Count"), req, { key: `${name}-r` });
      // An unknown field makes other bytes for the same request.
      errorOf(await peer.ask(M("Count"), new Uint8Array([0x78, 0x01]), { key: `${name}-r` }), Code.FAILED_PRECONDITION, "idempotency_key_reused", "other payload");
      peer.close();
    },
  },
  // ---- 6. Channels ---------------------------------------------------------------------------
  {
    section: "6.2",
    title: "Subscribe: Subscribed with the channel's position, then events with offsets 1, 2, 3 (seq 0, ack_seq 0)",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `reliable/${name}`;
      const id = peer.subscribe(M("Reliable"), channel);
      const s = await peer.next("subscribed");
      equal([s.id, s.channel, s.offset], [id, channel, 0n], "Subscribed");
      await publish(peer, "reliable", name, 3);
      await peer.next((e) => e.frame.case === "event" && e.frame.value.offset === 3n);
      const evs = peer.received.filter((e) => e.frame.case === "event");
      equal(evs.map((e) => [e.seq, e.ackSeq]), [[0n, 0n], [0n, 0n], [0n, 0n]], "seq and ack_seq of Events");
      equal(events(peer, channel).map((e) => [e.epoch === s.epoch, e.offset]), [[true, 1n], [true, 2n], [true, 3n]], "positions");
      equal(fromBinary(ReliableResponseSchema, events(peer, channel)[2]!.payload).n, 3, "payload");
      peer.close();
    },
  },
  {
    section: "6.2",
    title: "refusals: unknown_method, bad_channel, missing_scope, max_subscriptions",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const answer = async (id: number): Promise<Envelope["frame"]> => (await peer.next((e) => (e.frame.case === "error" || e.frame.case === "subscribed") && e.frame.value.id === id)).frame;
      errorOf(await answer(peer.subscribe(M("Nope"), "x")), Code.NOT_FOUND, "unknown_method", "unknown channel method");
      errorOf(await answer(peer.subscribe(M("Reliable"), "reliable/a/b")), Code.INVALID_ARGUMENT, "bad_channel", "bad channel");
      errorOf(await answer(peer.subscribe(M("Secret"), `secret/${name}`)), Code.PERMISSION_DENIED, "missing_scope", "missing scope");
      for (let i = 0; i < 16; i++) expect((await answer(peer.subscribe(M("Newest"), `newest/${name}-${i}`))).case === "subscribed", `subscription ${i + 1}`);
      errorOf(await answer(peer.subscribe(M("Newest"), `newest/${name}-16`)), Code.RESOURCE_EXHAUSTED, "max_subscriptions", "17th subscription");
      peer.close();
    },
  },
  {
    section: "6.4",
    title: "recovery: everything after the client's position follows (recovered)",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `reliable/${name}`;
      peer.subscribe(M("Reliable"), channel);
      const first = await peer.next("subscribed");
      await publish(peer, "reliable", name, 5);
      await peer.next((e) => e.frame.case === "event" && e.frame.value.offset === 5n);
      peer.close();
      const { peer: again } = await Peer.hello(url, { token: name });
      const id = again.subscribe(M("Reliable"), channel, { epoch: first.epoch, offset: 2 });
      const s = await again.next("subscribed");
      equal([s.id, s.offset, s.recovered, s.gap], [id, 2n, true, undefined], "Subscribed");
      await again.next((e) => e.frame.case === "event" && e.frame.value.offset === 5n);
      equal(events(again, channel).map((e) => e.offset), [3n, 4n, 5n], "replayed offsets");
      again.close();
    },
  },
  {
    section: "6.4",
    title: "recovery past the history: gap history_expired; from another epoch: gap epoch_changed",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `reliable/${name}`;
      peer.subscribe(M("Reliable"), channel);
      const first = await peer.next("subscribed");
      await publish(peer, "reliable", name, 30);
      await peer.next((e) => e.frame.case === "event" && e.frame.value.offset === 30n);
      const id = peer.subscribe(M("Reliable"), channel, { epoch: first.epoch, offset: 1 });
      const s = (await peer.next((e) => e.frame.case === "subscribed" && e.frame.value.id === id)).frame as { value: FrameOf<"subscribed"> };
      equal([s.value.offset, s.value.recovered, s.value.gap?.fromOffset, s.value.gap?.toOffset, s.value.gap?.reason], [10n, false, 2n, 10n, "history_expired"], "Subscribed");
      const id2 = peer.subscribe(M("Reliable"), channel, { epoch: "not-an-epoch", offset: 3 });
      const s2 = (await peer.next((e) => e.frame.case === "subscribed" && e.frame.value.id === id2)).frame as { value: FrameOf<"subscribed"> };
      equal([s2.value.gap?.fromOffset, s2.value.gap?.reason], [0n, "epoch_changed"], "gap");
      peer.close();
    },
  },
  {
    section: "6.7",
    title: "Unsubscribe is answered by Unsubscribed, also for a channel not held",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.subscribe(M("Reliable"), `reliable/${name}`);
      await peer.next("subscribed");
      for (const channel of [`reliable/${name}`, `reliable/${name}-never`]) {
        const id = peer.takeId();
        peer.sendSequenced({ case: "unsubscribe", value: { id, channel } });
        const u = (await peer.next((e) => e.frame.case === "unsubscribed" && e.frame.value.id === id)).frame as { value: FrameOf<"unsubscribed"> };
        equal([u.value.channel, u.value.code], [channel, Code.UNSPECIFIED], "Unsubscribed");
      }
      peer.close();
    },
  },
  {
    section: "6.7",
    title: "a removal by the server: Unsubscribed id 0, PERMISSION_DENIED, kicked",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.subscribe(M("Room"), `room/${name}`);
      await peer.next("subscribed");
      await peer.ask(M("Kick"), encode(KickRequestSchema, { name }));
      const u = await peer.next("unsubscribed");
      equal([u.id, u.code, u.reason], [0, Code.PERMISSION_DENIED, "kicked"], "Unsubscribed");
      peer.close();
    },
  },
  {
    section: "6.8",
    title: "a confirmed Publish is answered with its ChannelPosition; the publisher's subscription gets the event",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `reliable/${name}`;
      peer.subscribe(M("Reliable"), channel);
      const s = await peer.next("subscribed");
      const id = peer.takeId();
      peer.sendSequenced({ case: "publish", value: { id, method: M("Reliable"), channel, payload: encode(ReliableResponseSchema, { n: 1 }) } });
      const r = (await peer.next((e) => e.frame.case === "reply" && e.frame.value.id === id)).frame as { value: FrameOf<"reply"> };
      const pos = fromBinary(ChannelPositionSchema, r.value.payload);
      equal([pos.channel, pos.epoch, pos.offset], [channel, s.epoch, 1n], "ChannelPosition");
      await peer.next("event");
      peer.close();
    },
  },
  {
    section: "6.8",
    title: "publish refusals: client_publish_disabled; an exactly-once channel needs a key and dedupes it",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const pub = async (method: string, channel: string, key = ""): Promise<Envelope["frame"]> => {
        const id = peer.takeId();
        peer.sendSequenced({ case: "publish", value: { id, method: M(method), channel, payload: new Uint8Array(), idempotencyKey: key } });
        return (await peer.next((e) => (e.frame.case === "reply" || e.frame.case === "error") && e.frame.value.id === id)).frame;
      };
      errorOf(await pub("Newest", `newest/${name}`), Code.PERMISSION_DENIED, "client_publish_disabled", "publish to newest");
      errorOf(await pub("Once", `once/${name}`), Code.INVALID_ARGUMENT, "idempotency_key_required", "exactly-once without key");
      const a = await pub("Once", `once/${name}`, `${name}-p`);
      const b = await pub("Once", `once/${name}`, `${name}-p`);
      expect(a.case === "reply" && b.case === "reply", "both publishes confirmed");
      equal(fromBinary(ChannelPositionSchema, b.value.payload).offset, fromBinary(ChannelPositionSchema, a.value.payload).offset, "the retry's position");
      peer.close();
    },
  },
  {
    section: "6.9",
    title: "presence: the member list in Subscribed, joined and left in Presence frames",
    async run({ url, name }) {
      const channel = `room/${name}`;
      const { peer: a, welcome: wa } = await Peer.hello(url, { token: name });
      a.subscribe(M("Room"), channel);
      equal((await a.next("subscribed")).members.map((m) => m.clientId), [wa.sessionId], "first member list");
      const { peer: b, welcome: wb } = await Peer.hello(url, { token: `${name}-b` });
      b.subscribe(M("Room"), channel);
      equal((await b.next("subscribed")).members.map((m) => m.clientId).sort(), [wa.sessionId, wb.sessionId].sort(), "second member list");
      const joined = await a.next("presence");
      equal([joined.joined.map((m) => m.principal), joined.left.length], [[`${name}-b`], 0], "joined");
      b.close();
      const left = await a.next((e) => e.frame.case === "presence" && e.frame.value.left.length > 0);
      equal((left.frame.value as FrameOf<"presence">).left.map((m) => m.clientId), [wb.sessionId], "left");
      a.close();
    },
  },
  {
    section: "6.9",
    title: "a member list too large for one envelope continues in Presence frames before any Event",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      // 80 members of about 240 bytes each do not fit 16,384 bytes.
      const crowd = await peer.ask(M("Crowd"), encode(CrowdRequestSchema, { name, count: 80, principalBytes: 200 }), { timeoutMs: 10_000, waitMs: 12_000 });
      expect(crowd.case === "reply", `Crowd answered ${crowd.case}`);
      const channel = `room/${name}`;
      peer.subscribe(M("Room"), channel);
      await peer.next("subscribed");
      await publish(peer, "room", name, 1);
      await peer.next("event");
      const kinds = peer.received.filter((e) => ["subscribed", "presence", "event"].includes(e.frame.case ?? "")).map((e) => e.frame.case);
      const firstEvent = kinds.indexOf("event");
      const presences = kinds.slice(0, firstEvent).filter((k) => k === "presence").length;
      expect(presences >= 1, "at least one Presence frame continues the list");
      let members = 0;
      for (const e of peer.received) {
        if (e.frame.case === "subscribed") members += e.frame.value.members.length;
        if (e.frame.case === "presence") members += e.frame.value.joined.length;
      }
      equal(members, 81, "members listed");
      expect(peer.received.every((e) => toSize(e) <= MAX_ENVELOPE), "every envelope within max_envelope_bytes");
      peer.close();
    },
  },
  // ---- 7. Back-pressure -----------------------------------------------------------------------
  {
    section: "7.4",
    title: "a reader that stops reading an at-least-once channel is closed with 4002",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.subscribe(M("Reliable"), `reliable/${name}`);
      await peer.next("subscribed");
      peer.pause();
      peer.call(M("Publish"), encode(PublishRequestSchema, { kind: "reliable", name, count: 1_500, size: 8_000 }));
      await sleep(600);
      peer.resumeReading();
      await closesWith(peer, 4002, 8_000);
    },
  },
  {
    section: "7.4",
    title: "drop-oldest: the newest events arrive, older ones are dropped, the connection stays",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `oldest/${name}`;
      peer.subscribe(M("Oldest"), channel);
      await peer.next("subscribed");
      peer.pause();
      peer.call(M("Publish"), encode(PublishRequestSchema, { kind: "oldest", name, count: 1_500, size: 8_000 }));
      await sleep(600);
      peer.resumeReading();
      await peer.next((e) => e.frame.case === "event" && e.frame.value.offset === 1_500n, 8_000);
      const got = events(peer, channel).map((e) => Number(e.offset));
      expect(got.length < 1_500, `some events dropped (got ${got.length})`);
      expect(got.every((o, i) => i === 0 || o > got[i - 1]!), "offsets increase");
      equal(await peer.staysOpen(50), true, "connection open");
      peer.close();
    },
  },
  {
    section: "7.4",
    title: "conflate: the latest event of every key arrives",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const channel = `latest/${name}`;
      peer.subscribe(M("Latest"), channel);
      await peer.next("subscribed");
      peer.pause();
      peer.call(M("Publish"), encode(PublishRequestSchema, { kind: "latest", name, count: 1_500, size: 8_000, keys: 4 }));
      await sleep(600);
      peer.resumeReading();
      await peer.next((e) => e.frame.case === "event" && e.frame.value.offset === 1_500n, 8_000);
      await sleep(100);
      const got = events(peer, channel).map((e) => Number(e.offset));
      expect(got.length < 1_500, `some events conflated (got ${got.length})`);
      for (const last of [1_497, 1_498, 1_499, 1_500]) expect(got.includes(last), `the latest event of its key (${last}) arrived`);
      peer.close();
    },
  },
  // ---- 8. Sessions -------------------------------------------------------------------------------
  {
    section: "8.3",
    title: "Resume: Resumed, then the reliable pushes sent while away, then a re-sync of every subscription",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: name });
      peer.subscribe(M("Reliable"), `reliable/${name}`);
      const s = await peer.next("subscribed");
      peer.send({ case: "ack", value: { channels: [{ channel: `reliable/${name}`, epoch: s.epoch, offset: 0n }] } });
      // The pushes go out while the client is away.
      await peer.ask(M("Push"), encode(PushRequestSchema, { count: 3, reliable: true, delayMs: 800 }));
      const lastSeq = peer.inSeq;
      peer.drop();
      await sleep(1_200);
      const again = await Peer.open(url, { token: name });
      again.inSeq = lastSeq;
      again.outSeq = peer.outSeq;
      again.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken, lastSeq: BigInt(lastSeq) } });
      const r = await again.next("resumed");
      equal([r.sessionId, r.lastSeq], [welcome.sessionId, BigInt(peer.outSeq)], "Resumed");
      await again.next((e) => e.frame.case === "push" && e.seq === BigInt(lastSeq + 3));
      const pushes = again.received.filter((e) => e.frame.case === "push").map((e) => Number(e.seq));
      equal(pushes, [lastSeq + 1, lastSeq + 2, lastSeq + 3], "pushes, in seq order");
      const resync = await again.next("subscribed");
      equal(resync.id, 0, "re-sync id");
      again.close();
    },
  },
  {
    section: "8.3",
    title: "a Resume with a bad token or another principal is refused and leaves the session to its owner",
    async run({ url, name }) {
      // The session stays attached meanwhile, so that no grace period runs out during the case.
      const { peer, welcome } = await Peer.hello(url, { token: name });
      const tries: [string, string, string][] = [
        [name, "x".repeat(welcome.resumeToken.length), "bad_token"],
        [`${name}-other`, welcome.resumeToken, "unknown"],
      ];
      for (const [token, resumeToken, reason] of tries) {
        const p = await Peer.open(url, { token });
        p.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken } });
        const w = await p.next("welcome");
        equal([w.sessionLost?.reason, w.sessionLost?.previousSessionId], [reason, welcome.sessionId], "session_lost");
        p.close();
      }
      const owner = await Peer.open(url, { token: name });
      owner.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken } });
      equal((await owner.next("resumed")).sessionId, welcome.sessionId, "the owner resumes");
      equal((await peer.closes()).code, 1000, "the session's old connection is closed with");
      owner.close();
    },
  },
  {
    section: "8.3",
    title: "a Resume whose last_seq is beyond what the server sent: close 4500",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: name });
      peer.drop();
      await sleep(100);
      const p = await Peer.open(url, { token: name });
      p.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken, lastSeq: 99n } });
      await closesWith(p, 4500);
    },
  },
  {
    section: "8.5",
    title: "a session the client closed with 1000 is gone: Resume gets session_lost unknown",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: name });
      peer.close(1000);
      await peer.closed;
      await sleep(50);
      const p = await Peer.open(url, { token: name });
      p.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken } });
      const w = await p.next("welcome");
      equal(w.sessionLost?.reason, "unknown", "reason");
      expect(w.sessionId !== welcome.sessionId, "a new session");
      p.close();
    },
  },
  {
    section: "8.5",
    title: "after the grace period: session_lost expired",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: name });
      peer.drop();
      await sleep(GRACE_MS + 700);
      const p = await Peer.open(url, { token: name });
      p.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken } });
      equal((await p.next("welcome")).sessionLost?.reason, "expired", "reason");
      p.close();
    },
  },
  {
    section: "8.5",
    title: "more reliable pushes than the buffer holds while away: session_lost overflow with the lost range",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: name });
      await peer.ask(M("Push"), encode(PushRequestSchema, { count: 250, reliable: true, delayMs: 600 }));
      const lastSeq = peer.inSeq;
      peer.drop();
      await sleep(1_200);
      const p = await Peer.open(url, { token: name });
      p.send({ case: "resume", value: { version: 1, sessionId: welcome.sessionId, resumeToken: welcome.resumeToken, lastSeq: BigInt(lastSeq) } });
      const lost = (await p.next("welcome")).sessionLost;
      equal([lost?.reason, lost?.lostFromSeq], ["overflow", BigInt(lastSeq + 1)], "session_lost");
      expect((lost?.lostToSeq ?? 0n) >= BigInt(lastSeq + 200), "lost_to_seq covers the pushes");
      p.close();
    },
  },
  {
    section: "8.6",
    title: "a connected client that leaves the retransmission buffer full: close 4002",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name, autoAck: false });
      peer.call(M("Push"), encode(PushRequestSchema, { count: 250, reliable: true }));
      await closesWith(peer, 4002);
    },
  },
  // ---- 9. Heartbeats ------------------------------------------------------------------------------
  {
    section: "9",
    title: "Ping within the interval; a Ping left unanswered closes 4001; a client Ping gets its Pong",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name, autoPong: false });
      peer.send({ case: "ping", value: { sentAtMs: 12_345n } });
      equal((await peer.next("pong")).sentAtMs, 12_345n, "Pong.sent_at_ms");
      const opened = Date.now();
      // What a client may rely on (section 9): an envelope within ping interval + timeout.
      const ping = await peer.next("ping", 3_500);
      expect(ping.sentAtMs > 0n, "Ping.sent_at_ms");
      expect(Date.now() - opened <= 3_000, "first Ping within ping interval + timeout");
      await closesWith(peer, 4001, 2_500);
    },
  },
  // ---- 10. Credentials --------------------------------------------------------------------------
  {
    section: "10.1",
    title: "an expiring credential: AuthExpiring, then close 4005 at the expiry",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: `${name};ttl=1500` });
      expect(welcome.expiresAtMs > 0n, "Welcome.expires_at_ms");
      equal((await peer.next("authExpiring", 2_000)).expiresAtMs, welcome.expiresAtMs, "AuthExpiring.expires_at_ms");
      const c = await peer.closes(3_000);
      equal(c.code, 4005, "close code");
      expect(Date.now() >= Number(welcome.expiresAtMs) - 50, "not before the expiry");
    },
  },
  {
    section: "10.1",
    title: "AuthRefresh: accepted for the same principal; another principal gets principal_changed and 4502",
    async run({ url, name }) {
      const { peer, welcome } = await Peer.hello(url, { token: `${name};ttl=1200` });
      peer.send({ case: "authRefresh", value: { id: 1, token: `${name};ttl=60000` } });
      const ok = await peer.next("authRefreshed");
      expect(ok.id === 1 && ok.expiresAtMs > welcome.expiresAtMs, "AuthRefreshed with the new expiry");
      equal(await peer.staysOpen(1_500), true, "open past the first expiry");
      peer.send({ case: "authRefresh", value: { id: 2, token: `${name}-other` } });
      const err = await peer.next("error");
      equal([err.id, err.code, err.reason], [2, Code.PERMISSION_DENIED, "principal_changed"], "Error");
      await closesWith(peer, 4502);
    },
  },
  // ---- 11. Goaway and close codes --------------------------------------------------------------
  {
    section: "3.4",
    title: "Goaway on demand, then close 4000 after close_in_ms",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      await peer.ask(M("Goaway"), encode(GoawayRequestSchema, { reason: "rebalance", closeInMs: 300 }));
      const g = await peer.next("goaway");
      equal([g.reason, g.closeInMs], ["rebalance", 300], "Goaway");
      await closesWith(peer, 4000, 2_000);
    },
  },
  {
    section: "10.2",
    title: "a missing call scope gets PERMISSION_DENIED missing_scope; a removed client is closed with 4503",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      errorOf(await peer.ask(M("Forbidden"), new Uint8Array()), Code.PERMISSION_DENIED, "missing_scope", "Forbidden");
      peer.call(M("Ban"), new Uint8Array());
      await closesWith(peer, 4503);
    },
  },
  // ---- 12. Limits --------------------------------------------------------------------------------
  {
    section: "12",
    title: "more running calls than allowed: RESOURCE_EXHAUSTED max_inflight_calls",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      const ids = Array.from({ length: 9 }, () => peer.call(M("Sleep"), encode(SleepRequestSchema, { durationMs: 300 })));
      const last = (await peer.next((e) => e.frame.case === "error" && e.frame.value.id === ids[8])).frame;
      errorOf(last, Code.RESOURCE_EXHAUSTED, "max_inflight_calls", "9th call");
      peer.close();
    },
  },
  {
    section: "12",
    title: "a request field over its bound: INVALID_ARGUMENT field_too_long",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      errorOf(await peer.ask(`${SVC}/${"x".repeat(300)}`, new Uint8Array()), Code.INVALID_ARGUMENT, "field_too_long", "300-byte method");
      const id = peer.subscribe(M("Reliable"), `reliable/${"c".repeat(1_100)}`);
      errorOf((await peer.next((e) => e.frame.case === "error" && e.frame.value.id === id)).frame, Code.INVALID_ARGUMENT, "field_too_long", "1,100-byte channel");
      peer.close();
    },
  },
  {
    section: "12",
    title: "past the message rate: rate_limited with retry_after_ms, and 4004 for a client that keeps going",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      for (let i = 0; i < 110; i++) peer.call(M("Echo"), new Uint8Array());
      const err = await peer.next((e) => e.frame.case === "error" && e.frame.value.reason === "rate_limited");
      const v = err.frame.value as FrameOf<"error">;
      expect(v.code === Code.RESOURCE_EXHAUSTED && v.retryAfterMs > 0, "RESOURCE_EXHAUSTED with retry_after_ms");
      equal(await peer.staysOpen(50), true, "open after a few refusals");
      for (let i = 0; i < 300; i++) peer.call(M("Echo"), new Uint8Array());
      await closesWith(peer, 4004);
    },
  },
  {
    section: "12",
    title: "more connections of one principal than allowed: close 4006 before Welcome",
    async run({ url, name }) {
      const open = await Promise.all([1, 2, 3].map(() => Peer.hello(url, { token: name })));
      const fourth = await Peer.open(url, { token: name });
      fourth.send({ case: "hello", value: { version: 1 } });
      await closesWith(fourth, 4006);
      equal(fourth.received.length, 0, "envelopes");
      for (const o of open) o.peer.close();
    },
  },
  {
    section: "12",
    title: "more than 10,000 entries in a repeated field: close 1009",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      // 10,001 empty ChannelPositions: two bytes each, over both limits.
      const body = new Uint8Array(10_001 * 2).fill(0).map((_, i) => (i % 2 === 0 ? 0x0a : 0x00));
      const ack = new Uint8Array([0x82, 0x01, ...varint(body.length), ...body]);
      peer.sendBytes(ack);
      await closesWith(peer, 1009);
    },
  },
  // ---- 13. Evolution ---------------------------------------------------------------------------
  {
    section: "13.3",
    title: "an unknown frame kind (field 26) with a seq is counted and acknowledged, otherwise ignored",
    async run({ url, name }) {
      const { peer } = await Peer.hello(url, { token: name });
      peer.sendBytes(new Uint8Array([0x08, 0x01, 0xd2, 0x01, 0x00]));
      peer.outSeq = 1;
      await peer.next((e) => e.ackSeq === 1n, 1_000);
      const id = peer.call(M("Echo"), encode(EchoRequestSchema, { size: 1 }));
      equal((await peer.next((e) => e.frame.case === "reply" && e.frame.value.id === id)).ackSeq, 2n, "ack of the next frame");
      peer.close();
    },
  },
];

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** Encoded size of a received envelope, to check it stayed within the announced limit. */
function toSize(e: Envelope): number {
  return toBinary(EnvelopeSchema, e).byteLength;
}
