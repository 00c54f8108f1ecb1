import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, customOutbox, defaultOutboxLimits, fileOutbox, memoryOutbox, type Connection, type Metadata, type OutboxRecord, type OutboxStore } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { ShowcaseService } from "../../generated/acme/showcase/v1/showcase_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";

// Stores that hold junk, stores that fail, bounds, and the order "stored, then sent; deleted,
// then delivered".

const SEND = "acme.chat.v1.ChatService/SendMessage";
const request = (text: string): Uint8Array => ChatService.calls["sendMessage"]!.inputCodec.encode({ roomId: "r", text } as never);
const record = (key: string, text: string, storedAt = Date.now()): OutboxRecord => ({ version: 1, key, method: SEND, request: request(text), timeoutMs: 5_000, storedAt });
const withMetadata = (key: string, text: string, metadata: Metadata): OutboxRecord => ({ ...record(key, text), metadata });

/**
 * A store of the application's own that keeps each record as JSON text, as a database column
 * or localStorage would: the request in base64, every other field as it is.
 */
function jsonTextStore(): OutboxStore {
  const rows = new Map<string, string>();
  return customOutbox({
    async put(r: OutboxRecord) {
      rows.set(r.key, JSON.stringify({ ...r, request: Buffer.from(r.request).toString("base64") }));
    },
    async delete(key: string) {
      rows.delete(key);
    },
    async list() {
      return Array.from(rows.values(), (text) => {
        const row = JSON.parse(text) as { request: string };
        return { ...row, request: new Uint8Array(Buffer.from(row.request, "base64")) };
      });
    },
    async clear() {
      rows.clear();
    },
  });
}

/** A memory store that also logs what it was asked, and can be told to fail or wait. */
function spyStore(initial: unknown[] = []) {
  const entries = new Map<string, unknown>(initial.map((e, i) => [String((e as { key?: unknown } | null)?.key ?? `#${i}`), e]));
  const log: string[] = [];
  const spy = {
    log,
    entries,
    /** Every record put, in order. */
    puts: [] as OutboxRecord[],
    failPut: false,
    failList: false,
    gate: undefined as Promise<void> | undefined,
    // A store of the application's own: customOutbox() brings the outbox's code along.
    store: customOutbox({
      async put(r: OutboxRecord) {
        log.push(`put ${r.method}`);
        spy.puts.push(r);
        await spy.gate;
        if (spy.failPut) throw new Error("disk full");
        entries.set(r.key, r);
      },
      async delete(key: string) {
        log.push("delete");
        entries.delete(key);
      },
      async list() {
        if (spy.failList) throw new Error("store offline");
        return Array.from(entries.values());
      },
      async clear() {
        entries.clear();
      },
    } satisfies OutboxStore),
  };
  return spy;
}

describe("outbox stores, corrupt contents and bounds", () => {
  let h: Harness;
  const runs = new Map<string, number>();
  /** The metadata each call's handler saw, by idempotency key. */
  const metadataOf = new Map<string, Metadata>();
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "protocast-outbox-"));
    h = await startHarness({ authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat", "showcase"] }) });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        runs.set(ctx.idempotencyKey, (runs.get(ctx.idempotencyKey) ?? 0) + 1);
        metadataOf.set(ctx.idempotencyKey, { ...ctx.metadata });
        if (req.text.startsWith("wait")) await new Promise((r) => setTimeout(r, 200));
        return { messageId: req.text };
      },
      listRooms: () => ({ rooms: [] }),
    });
  });
  afterAll(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  const errorsOf = (conn: Connection): ProtocastError[] => {
    const errors: ProtocastError[] = [];
    conn.outbox.on("error", (e) => errors.push(e));
    return errors;
  };

  it("skips foreign and corrupt entries with an error event each, deletes the corrupt ones it can, and recovers the rest", async () => {
    const spy = spyStore([
      null,
      "a string",
      { version: 2, key: "from-a-later-release" },
      { version: 1, key: "bad-method", method: "not a path", request: request("x"), timeoutMs: 5_000, storedAt: Date.now() },
      { version: 1, key: "bad-request", method: SEND, request: "not bytes", timeoutMs: 5_000, storedAt: Date.now() },
      { version: 1, key: "bad-timeout", method: SEND, request: request("x"), timeoutMs: -1, storedAt: Date.now() },
      { version: 1, key: "bad-time", method: SEND, request: request("x"), timeoutMs: 5_000, storedAt: "yesterday" },
      { ...record("bad-metadata", "x"), metadata: { tenant: 7 } },
      record("good", "good one"),
    ]);
    const conn = h.client({ token: "carol", outbox: spy.store });
    const errors = errorsOf(conn);
    const recovered = [];
    for await (const r of conn.outbox.recovered()) recovered.push(r);
    expect(recovered.map((r) => r.idempotencyKey)).toEqual(["good"]);
    expect(errors.map((e) => e.reason)).toEqual([
      "outbox_record_foreign",
      "outbox_record_foreign",
      "outbox_record_foreign",
      "outbox_record_corrupt",
      "outbox_record_corrupt",
      "outbox_record_corrupt",
      "outbox_record_corrupt",
      "outbox_record_corrupt",
    ]);
    expect(errors.every((e) => e.code === Code.DataLoss)).toBe(true);
    expect(errors[4]!.message).toContain("its request is not bytes");
    expect(errors[7]!.message).toContain('its metadata value of "tenant" is not a string');
    // Foreign entries are not ours to delete; corrupt ones of this outbox are.
    expect([...spy.entries.keys()].sort()).toEqual(["#0", "#1", "from-a-later-release"]);
    // The connection itself is unharmed.
    expect((await createClient(ChatService, conn).sendMessage({ roomId: "r", text: "after junk" })).messageId).toBe("after junk");
  });

  it("a store that cannot be read is one error event, not a throw; calls still go through it", async () => {
    const spy = spyStore([record("lost", "x")]);
    spy.failList = true;
    const conn = h.client({ token: "carol", outbox: spy.store });
    const errors = errorsOf(conn);
    const items = [];
    for await (const r of conn.outbox.recovered()) items.push(r);
    expect(items).toEqual([]);
    expect(errors.map((e) => [e.code, e.reason])).toEqual([[Code.Unavailable, "outbox_unreadable"]]);
    await createClient(ChatService, conn).sendMessage({ roomId: "r", text: "still works" });
    await until(() => spy.log.length === 2, "the record to be deleted");
    expect(spy.log).toEqual([`put ${SEND}`, "delete"]);
  });

  it("a JSON file that is not an outbox file is moved aside and reported; the store starts afresh", async () => {
    const path = join(dir, "damaged.json");
    await writeFile(path, '{"records": [truncated');
    const conn = h.client({ token: "carol", outbox: fileOutbox(path) });
    const errors = errorsOf(conn);
    for await (const _ of conn.outbox.recovered()) throw new Error("nothing to recover");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.reason).toBe("outbox_unreadable");
    expect((await readdir(dir)).some((f) => f.startsWith("damaged.json.corrupt-"))).toBe(true);
    await createClient(ChatService, conn).sendMessage({ roomId: "r", text: "fresh" });
    await until(() => conn.outbox.held.records === 0, "the record to be deleted");
    await conn.outbox.stored();
    expect(JSON.parse(await readFile(path, "utf8"))).toEqual({ protocast: "outbox", version: 1, records: [] });
  });

  it("a record in the file whose request is not base64 is corrupt; the others are recovered", async () => {
    const path = join(dir, "one-bad.json");
    const good = { ...record("file-good", "from file"), request: Buffer.from(request("from file")).toString("base64") };
    await writeFile(path, JSON.stringify({ protocast: "outbox", version: 1, records: [good, { ...good, key: "file-bad", request: "%%%" }] }));
    const conn = h.client({ token: "carol", outbox: fileOutbox(path) });
    const errors = errorsOf(conn);
    const items = [];
    for await (const r of createClient(ChatService, conn).$recovered()) items.push(r);
    expect(items.map((r) => [r.idempotencyKey, r.outcome.kind === "reply" ? r.outcome.response.messageId : r.outcome.kind])).toEqual([["file-good", "from file"]]);
    expect(errors.map((e) => e.reason)).toEqual(["outbox_record_corrupt"]);
    await conn.outbox.stored();
    expect(JSON.parse(await readFile(path, "utf8")).records).toEqual([]);
  });

  it("a call's record holds the metadata it is sent with: the connection's defaults with the call's own over them", async () => {
    const spy = spyStore();
    const conn = h.client({ token: "carol", outbox: spy.store, metadata: { tenant: "acme", locale: "en" } });
    const chat = createClient(ChatService, conn);
    await chat.sendMessage({ roomId: "r", text: "own" }, { idempotencyKey: "meta-own", metadata: { locale: "fr", "x-request-id": "r-1" } });
    await chat.sendMessage({ roomId: "r", text: "defaults" }, { idempotencyKey: "meta-defaults" });
    expect(spy.puts.map((r) => [r.key, { ...r.metadata }])).toEqual([
      ["meta-own", { tenant: "acme", locale: "fr", "x-request-id": "r-1" }],
      ["meta-defaults", { tenant: "acme", locale: "en" }],
    ]);
    // What was stored is what the handler got.
    expect(metadataOf.get("meta-own")).toEqual({ tenant: "acme", locale: "fr", "x-request-id": "r-1" });
    // Metadata that breaks a rule fails the call before anything is stored.
    await expect(chat.sendMessage({ roomId: "r", text: "x" }, { metadata: { Tenant: "x" } })).rejects.toMatchObject({ reason: "bad_metadata" });
    expect(spy.puts).toHaveLength(2);
    // A call without metadata leaves the field out.
    const plain = spyStore();
    await createClient(ChatService, h.client({ token: "carol", outbox: plain.store })).sendMessage({ roomId: "r", text: "plain" });
    expect(plain.puts).toHaveLength(1);
    expect("metadata" in plain.puts[0]!).toBe(false);
    await until(() => spy.entries.size === 0 && plain.entries.size === 0, "the records to be deleted");
  });

  describe("every store keeps a record's metadata, and reads a record without it as an earlier release wrote it", () => {
    const metadata = { tenant: "acme", "x-request-id": "r-9", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };
    const same = (store: OutboxStore) => ({ writer: store, reader: () => store });
    const cases = [
      { name: "memoryOutbox", tag: "memory", make: () => same(memoryOutbox()) },
      {
        name: "fileOutbox, read back by a new store object (as a new process would)",
        tag: "file",
        make: () => {
          const path = join(dir, "round-trip.json");
          return { writer: fileOutbox(path), reader: () => fileOutbox(path) };
        },
      },
      { name: "customOutbox over a store that keeps JSON text", tag: "custom", make: () => same(jsonTextStore()) },
    ];
    for (const { name, tag, make } of cases) {
      it(name, async () => {
        const { writer, reader } = make();
        const withMeta = withMetadata(`${tag}-with-metadata`, "with metadata", metadata);
        const earlier = record(`${tag}-earlier-release`, "earlier release");
        await writer.put(withMeta);
        await writer.put(earlier);
        const store = reader();
        const listed = (await store.list()) as OutboxRecord[];
        const byKey = new Map(listed.map((r) => [r.key, r]));
        expect(byKey.get(withMeta.key)).toEqual(withMeta);
        expect(byKey.get(earlier.key)).toEqual(earlier);
        expect("metadata" in byKey.get(earlier.key)!).toBe(false);
        // A client over the store resends both: the first with its metadata, the other without.
        const conn = h.client({ token: "carol", outbox: store, metadata: { tenant: "not-this-one" } });
        const errors = errorsOf(conn);
        const outcomes = [];
        const recoveredMetadata = new Map<string, object>();
        for await (const r of createClient(ChatService, conn).$recovered()) {
          outcomes.push([r.idempotencyKey, r.outcome.kind]);
          recoveredMetadata.set(r.idempotencyKey, { ...r.metadata });
        }
        expect(outcomes.sort()).toEqual([[earlier.key, "reply"], [withMeta.key, "reply"]].sort());
        // The reader sees the metadata the call was sent again with.
        expect(recoveredMetadata.get(withMeta.key)).toEqual(metadata);
        expect(recoveredMetadata.get(earlier.key)).toEqual({});
        expect(errors).toEqual([]);
        expect(metadataOf.get(withMeta.key)).toEqual(metadata);
        expect(metadataOf.get(earlier.key)).toEqual({});
        await until(async () => (await store.list()).length === 0, "both records to be deleted");
      });
    }
  });

  it("a call is stored before it is sent: while the store has not confirmed, the server has not seen it", async () => {
    const spy = spyStore();
    let open: () => void = () => undefined;
    spy.gate = new Promise((r) => (open = r));
    const conn = h.client({ token: "carol", outbox: spy.store });
    await conn.opened();
    const key = "gated-key";
    const call = createClient(ChatService, conn).sendMessage({ roomId: "r", text: "gated" }, { idempotencyKey: key });
    await new Promise((r) => setTimeout(r, 150)); // a call sent too early would have reached the server by now
    expect(runs.has(key)).toBe(false);
    open();
    await call;
    expect(runs.get(key)).toBe(1);
  });

  it("a store that fails to write fails the call with UNAVAILABLE outbox_write_failed, unsent", async () => {
    const spy = spyStore();
    spy.failPut = true;
    const conn = h.client({ token: "carol", outbox: spy.store });
    const key = "unwritable-key";
    await expect(createClient(ChatService, conn).sendMessage({ roomId: "r", text: "x" }, { idempotencyKey: key })).rejects.toMatchObject({
      code: Code.Unavailable,
      reason: "outbox_write_failed",
    });
    expect(runs.has(key)).toBe(false);
    expect(conn.outbox.held.records).toBe(0);
  });

  it("a store that throws instead of rejecting is a write failure too, and holds nothing", async () => {
    const store: OutboxStore = { ...memoryOutbox(), put: () => { throw new Error("synchronous failure"); } };
    const conn = h.client({ token: "carol", outbox: store });
    await expect(createClient(ChatService, conn).sendMessage({ roomId: "r", text: "x" })).rejects.toMatchObject({ reason: "outbox_write_failed" });
    expect(conn.outbox.held.records).toBe(0);
  });

  it("the record outlives the application's handling of the reply, then goes", async () => {
    const store = memoryOutbox();
    const chat = createClient(ChatService, h.client({ token: "carol", outbox: store }));
    const during = await chat.sendMessage({ roomId: "r", text: "x" }).then(() => store.list());
    expect(during).toHaveLength(1);
    await until(async () => (await store.list()).length === 0, "the record to be deleted");
  });

  it("a recovered record goes when the reader asks for the next item, so a reader cut short sees it again", async () => {
    const store = memoryOutbox();
    for (const i of [1, 2]) await store.put(record(`ack-${i}`, `ack ${i}`));
    const first = h.client({ token: "carol", outbox: store });
    const reader = first.outbox.recovered();
    const one = await reader.next();
    expect(one.done).toBe(false);
    // The "page" goes while handling the first item: nothing was acknowledged.
    await first.close();
    expect((await store.list()).map((r) => (r as OutboxRecord).key).sort()).toEqual(["ack-1", "ack-2"]);
    const second = h.client({ token: "carol", outbox: store });
    const keys = [];
    for await (const r of second.outbox.recovered()) keys.push(r.idempotencyKey);
    expect(keys.sort()).toEqual(["ack-1", "ack-2"]);
    await until(async () => (await store.list()).length === 0, "both records to be deleted");
  });

  it("exactly-once and idempotent at-least-once calls go through the outbox; at-most-once calls do not", async () => {
    const spy = spyStore();
    const showcase = createClient(ShowcaseService, h.client({ token: "carol", outbox: spy.store }));
    // No ShowcaseService on this server: each call is answered UNIMPLEMENTED, which is enough here.
    for (const call of [showcase.getItem({}), showcase.putItem({}), showcase.touchItem({}), showcase.renameItem({}), showcase.peekItem({})]) {
      await call.catch(() => undefined);
    }
    const puts = spy.log.filter((l) => l.startsWith("put")).map((l) => l.split("/")[1]);
    expect(puts).toEqual(["PutItem", "TouchItem", "RenameItem"]);
    await until(() => spy.entries.size === 0, "the records to be deleted");
  });

  it("maxRecords and maxBytes bound the calls held; past them a call fails at once with outbox_full, naming the numbers", async () => {
    const conn = h.client({ token: "carol", outbox: { store: memoryOutbox(), maxRecords: 3 } });
    const chat = createClient(ChatService, conn);
    const held = [1, 2, 3].map((i) => chat.sendMessage({ roomId: "r", text: `wait-${i}` }));
    const refused = chat.sendMessage({ roomId: "r", text: "one too many" });
    await expect(refused).rejects.toMatchObject({ code: Code.ResourceExhausted, reason: "outbox_full" });
    await expect(refused).rejects.toThrow(/holds 3 calls .*maxRecords 3/);
    await Promise.all(held);
    await until(() => conn.outbox.held.records === 0, "the records to be released");
    await expect(chat.sendMessage({ roomId: "r", text: "room again" })).resolves.toMatchObject({ messageId: "room again" });

    const small = createClient(ChatService, h.client({ token: "carol", outbox: { store: memoryOutbox(), maxBytes: 200 } }));
    await expect(small.sendMessage({ roomId: "r", text: "y".repeat(300) })).rejects.toThrow(/maxBytes 200/);
  });

  it("recovered records count against the bounds until they are read", async () => {
    const store = memoryOutbox();
    for (const i of [1, 2]) await store.put(record(`bound-${i}`, `recovered ${i}`));
    const conn = h.client({ token: "carol", outbox: { store, maxRecords: 2 } });
    await until(() => conn.outbox.held.records === 2, "the two recovered records to be loaded");
    await expect(createClient(ChatService, conn).sendMessage({ roomId: "r", text: "no room" })).rejects.toMatchObject({ reason: "outbox_full" });
    for await (const _ of conn.outbox.recovered());
    expect(conn.outbox.held.records).toBe(0);
    await createClient(ChatService, conn).sendMessage({ roomId: "r", text: "room now" });
  });

  it("checks the outbox option and names the fault", () => {
    expect(defaultOutboxLimits).toEqual({ maxRecords: 1_000, maxBytes: 4 * 1024 * 1024, maxAgeMs: 300_000 });
    const bad = (outbox: unknown) => () => connect(h.url, { outbox: outbox as never, reconnect: false });
    expect(bad({ store: memoryOutbox(), maxRecords: 0 })).toThrow(/outbox.maxRecords must be an integer >= 1, got 0/);
    expect(bad({ store: memoryOutbox(), maxAge: 5 })).toThrow(/unknown option "maxAge"; did you mean "maxAgeMs"/);
    expect(bad({ maxRecords: 5 })).toThrow(/needs a store/);
    expect(bad({ put: () => undefined })).toThrow(/option outbox has no delete, list, clear methods/);
    expect(bad(Promise.resolve(memoryOutbox()))).toThrow(/is a Promise/);
    // A store of one's own, unwrapped, carries no outbox code: the error says how to pass it.
    const own: OutboxStore = { put: async () => undefined, delete: async () => undefined, list: async () => [], clear: async () => undefined };
    expect(bad(own)).toThrow(/option outbox is a store of your own: pass customOutbox\(store\)/);
    expect(bad({ store: own, maxRecords: 5 })).toThrow(/option outbox.store is a store of your own/);
    expect(() => customOutbox({ put: async () => undefined } as never)).toThrow(/customOutbox: option store has no delete, list, clear methods/);
    expect(() => connect(h.url, { outbox: customOutbox(own), reconnect: false }).close()).not.toThrow();
  });
});
