import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, createClient, type AuthorizeRequest, type Metadata } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import type { Frame } from "../../runtime/wire/envelope.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { openSession } from "../hostile/raw-session.js";

// Metadata over real WebSockets (PROTOCOL.md 3.8): from a client's call to its handler and the
// authorize hook, from ctx.publish, server.publish and a client publish to the subscribers,
// and what happens to metadata that breaks the rules on either side.
describe("metadata end to end", () => {
  let h: Harness;
  const seen: { method: string; metadata: Metadata }[] = [];
  const authorized: AuthorizeRequest[] = [];
  const hooks: Metadata[] = [];

  beforeAll(async () => {
    h = await startHarness({
      authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }),
      authorize: (req) => {
        authorized.push(req);
        return true;
      },
      maxMetadataEntries: 4,
    });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        seen.push({ method: ctx.method, metadata: ctx.metadata });
        // The handler passes one entry of its call's metadata on to the room's subscribers.
        const at = await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { text: req.text }, { metadata: { "x-request-id": ctx.metadata["x-request-id"] ?? "none" } });
        return { messageId: String(at.offset) };
      },
      listRooms: (_req, ctx) => {
        seen.push({ method: ctx.method, metadata: ctx.metadata });
        return { rooms: [] };
      },
      publishTyping: (_params, message, ctx) => {
        hooks.push(ctx.metadata);
        return { user: ctx.principal.id, typing: message.typing };
      },
    });
  });
  afterAll(() => h.close());

  it("a call's metadata, over the connection's defaults, reaches the handler and the authorize hook read-only", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice", metadata: { tenant: "t1", locale: "en" } }));
    await chat.listRooms({}, { metadata: { locale: "fr", "x-request-id": "r-1" } });
    const got = seen.at(-1)!;
    expect(got.method).toBe("acme.chat.v1.ChatService/ListRooms");
    expect({ ...got.metadata }).toEqual({ tenant: "t1", locale: "fr", "x-request-id": "r-1" });
    expect(Object.isFrozen(got.metadata)).toBe(true);
    expect(authorized.filter((a) => a.action === "call").at(-1)?.metadata).toEqual(got.metadata);
    // A call without metadata of its own still carries the defaults; one on a plain connection carries none.
    await chat.listRooms({});
    expect({ ...seen.at(-1)!.metadata }).toEqual({ tenant: "t1", locale: "en" });
    await createClient(ChatService, h.client({ token: "bob" })).listRooms({});
    expect(Object.keys(seen.at(-1)!.metadata)).toEqual([]);
  });

  it("ctx.publish and server.publish carry metadata to subscribers; withMetadata() shows it, the plain iterator is unchanged", async () => {
    const room = "meta-room";
    const withMeta = createClient(ChatService, h.client({ token: "carol" })).roomEvents({ roomId: room });
    const reader = withMeta.withMetadata()[Symbol.asyncIterator]();
    const plain = createClient(ChatService, h.client({ token: "dave" })).roomEvents({ roomId: room });
    const plainReader = plain[Symbol.asyncIterator]();
    await Promise.all([withMeta.ready, plain.ready]);

    const chat = createClient(ChatService, h.client({ token: "alice" }));
    await chat.sendMessage({ roomId: room, text: "one" }, { metadata: { "x-request-id": "r-42" } });
    await h.server.publish(ChatService.channels.roomEvents, { roomId: room }, { text: "two" }, { metadata: { origin: "server" } });
    await h.server.publish(ChatService.channels.roomEvents, { roomId: room }, { text: "three" });

    const first = (await reader.next()).value!;
    expect(first.message.text).toBe("one");
    expect({ ...first.metadata }).toEqual({ "x-request-id": "r-42" });
    const second = (await reader.next()).value!;
    expect([second.message.text, { ...second.metadata }]).toEqual(["two", { origin: "server" }]);
    const third = (await reader.next()).value!;
    expect([third.message.text, Object.keys(third.metadata)]).toEqual(["three", []]);
    expect((await plainReader.next()).value!.text).toBe("one");
    expect((await plainReader.next()).value!.text).toBe("two");
  });

  it("withMetadata() also shows the metadata of messages that arrived before it was called", async () => {
    const room = "late-reader";
    const sub = createClient(ChatService, h.client({ token: "hank" })).roomEvents({ roomId: room });
    await sub.ready;
    await h.server.publish(ChatService.channels.roomEvents, { roomId: room }, { text: "early" }, { metadata: { k: "v" } });
    await until(() => sub.position.offset > 0, "the event is queued");
    const first = (await sub.withMetadata()[Symbol.asyncIterator]().next()).value!;
    expect([first.message.text, { ...first.metadata }]).toEqual(["early", { k: "v" }]);
  });

  it("a client publish carries its metadata to the publish hook, the authorize hook and the subscribers", async () => {
    const room = "typing-room";
    const conn = h.client({ token: "erin" });
    const sub = createClient(ChatService, conn).typing({ roomId: room });
    const events = sub.withMetadata()[Symbol.asyncIterator]();
    await sub.ready;
    const chat = createClient(ChatService, h.client({ token: "frank", metadata: { device: "phone" } }));
    await chat.publishTyping({ roomId: room }, { typing: true }, { confirm: true, metadata: { "x-seq": "7" } });
    const got = (await events.next()).value!;
    expect(got.message).toMatchObject({ user: "frank", typing: true });
    expect({ ...got.metadata }).toEqual({ device: "phone", "x-seq": "7" });
    expect({ ...hooks.at(-1)! }).toEqual({ device: "phone", "x-seq": "7" });
    expect(authorized.filter((a) => a.action === "publish").at(-1)?.metadata).toEqual(got.metadata);
  });

  it("bad metadata fails on the client before sending, INVALID_ARGUMENT bad_metadata, and the connection lives", async () => {
    const conn = h.client({ token: "gina" });
    const chat = createClient(ChatService, conn);
    for (const metadata of [{ "Bad-Key": "x" }, { "protocast-internal": "x" }, { v: "x".repeat(1025) }]) {
      const err = await chat.listRooms({}, { metadata }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocastError);
      expect([(err as ProtocastError).code, (err as ProtocastError).reason]).toEqual([Code.InvalidArgument, "bad_metadata"]);
    }
    const err = await chat.publishTyping({ roomId: "x" }, { typing: true }, { metadata: { "": "x" } }).catch((e: unknown) => e);
    expect((err as ProtocastError).reason).toBe("bad_metadata");
    // Connection defaults are checked by connect() itself.
    expect(() => h.client({ metadata: { UPPER: "x" } })).toThrow(/not lowercase ASCII/);
    await chat.listRooms({});
    expect(conn.state).toBe("open");
  });

  it("server.publish refuses metadata past the server's limits", async () => {
    const err = await h.server
      .publish(ChatService.channels.roomEvents, { roomId: "x" }, { text: "t" }, { metadata: { a: "1", b: "2", c: "3", d: "4", e: "5" } })
      .catch((e: unknown) => e);
    expect([(err as ProtocastError).code, (err as ProtocastError).reason]).toEqual([Code.InvalidArgument, "bad_metadata"]);
  });

  it("a peer that sends bad metadata anyway gets Error INVALID_ARGUMENT bad_metadata and keeps its session", async () => {
    const s = await openSession(h.port, { headers: [["Authorization", "Bearer mallory"]] });
    try {
      const answers = (): Frame[] => s.received.map((e) => e.frame).filter((f) => f.case === "error" || f.case === "reply");
      const call = (id: number, entries: { key: string; value: string }[]): void =>
        s.sendFrame({ case: "call", value: { id, method: "acme.chat.v1.ChatService/ListRooms", payload: new Uint8Array(0), timeoutMs: 0, idempotencyKey: "", metadata: { entries } } }, id);
      const cases = [
        [{ key: "a", value: "1" }, { key: "a", value: "2" }],
        [{ key: "Upper", value: "1" }],
        Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: "v" })),
      ];
      for (const [i, entries] of cases.entries()) call(i + 1, entries);
      await until(() => answers().length >= 3, "three answers");
      expect(answers().map((f) => (f.case === "error" ? [f.value.id, f.value.code, f.value.reason] : f.case))).toEqual([
        [1, Code.InvalidArgument, "bad_metadata"],
        [2, Code.InvalidArgument, "bad_metadata"],
        [3, Code.InvalidArgument, "bad_metadata"],
      ]);
      call(4, [{ key: "ok", value: "1" }]);
      await until(() => answers().length >= 4, "the fourth answer");
      expect(answers()[3]!.case).toBe("reply");
      expect({ ...seen.at(-1)!.metadata }).toEqual({ ok: "1" });
    } finally {
      s.raw.close();
    }
  });
});
