// Metadata rules of PROTOCOL.md 3.8: what an application may send, what a receiver accepts,
// how connection defaults and a call's own metadata merge, and the read-only view.
import { describe, expect, it } from "vitest";
import { Code, ProtocastError } from "../../runtime/index.js";
import {
  DEFAULT_METADATA_LIMITS as D,
  NO_METADATA,
  mergeMetadata,
  metadataFrame,
  metadataView,
  receivedMetadataProblem,
  resolveMetadataLimits,
} from "../../runtime/wire/metadata.js";

function refusal(f: () => unknown): ProtocastError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocastError);
    return e as ProtocastError;
  }
  throw new Error("expected a refusal");
}

const entries = (o: Record<string, string>) => ({ entries: Object.entries(o).map(([key, value]) => ({ key, value })) });

describe("metadata an application sends", () => {
  it("is turned into entries, in the order given; nothing when empty or absent", () => {
    expect(metadataFrame({ "x-user": "alice", traceparent: "00-aa" }, D)).toEqual(entries({ "x-user": "alice", traceparent: "00-aa" }));
    expect(metadataFrame({}, D)).toBeUndefined();
    expect(metadataFrame(undefined, D)).toBeUndefined();
  });

  it.each([
    ["an uppercase key", { "X-User": "a" }, /not lowercase ASCII/],
    ["an empty key", { "": "a" }, /not lowercase ASCII/],
    ["a key with a space", { "a b": "a" }, /not lowercase ASCII/],
    ["a key starting with a dash", { "-a": "a" }, /not lowercase ASCII/],
    ["a non-ASCII key", { "é": "a" }, /not lowercase ASCII/],
    ["the reserved prefix", { "protocast-x": "a" }, /reserved prefix "protocast-"/],
    ["a value that is not a string", { a: 1 as unknown as string }, /not a string/],
  ])("%s is INVALID_ARGUMENT bad_metadata", (_name, metadata, message) => {
    const e = refusal(() => metadataFrame(metadata, D));
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.reason).toBe("bad_metadata");
    expect(e.message).toMatch(message);
  });

  it("each bound is enforced at its value and names both numbers", () => {
    const many = Object.fromEntries(Array.from({ length: D.maxMetadataEntries + 1 }, (_, i) => [`k${i}`, "v"]));
    expect(refusal(() => metadataFrame(many, D)).message).toMatch(`${D.maxMetadataEntries + 1} metadata entries, more than ${D.maxMetadataEntries}`);
    delete many[`k${D.maxMetadataEntries}`];
    expect(metadataFrame(many, D)!.entries).toHaveLength(D.maxMetadataEntries);

    const key = "k".repeat(D.maxMetadataKeyBytes);
    expect(metadataFrame({ [key]: "v" }, D)).toBeDefined();
    expect(refusal(() => metadataFrame({ [`${key}k`]: "v" }, D)).message).toMatch(`longer than ${D.maxMetadataKeyBytes} bytes`);

    // Values are measured in bytes of UTF-8: "é" is two.
    expect(metadataFrame({ v: "é".repeat(D.maxMetadataValueBytes / 2) }, D)).toBeDefined();
    expect(refusal(() => metadataFrame({ v: `${"é".repeat(D.maxMetadataValueBytes / 2)}a` }, D)).message).toMatch(`longer than ${D.maxMetadataValueBytes} bytes`);

    // Total: keys and values together.
    const value = "v".repeat(D.maxMetadataValueBytes - 2);
    const fits = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`k${i}`, value]));
    expect(metadataFrame(fits, D)).toBeDefined();
    expect(refusal(() => metadataFrame({ ...fits, k4: "x" }, D)).message).toMatch(`metadata of ${D.maxMetadataBytes + 3} bytes, more than ${D.maxMetadataBytes}`);
  });

  it("the runtime may set reserved keys it names", () => {
    expect(metadataFrame({ "protocast-x": "1" }, D, new Set(["protocast-x"]))).toEqual(entries({ "protocast-x": "1" }));
  });

  it("limits are options: smaller ones apply, bad ones are refused", () => {
    const small = resolveMetadataLimits({ maxMetadataEntries: 1 });
    expect(small).toMatchObject({ ...D, maxMetadataEntries: 1 });
    expect(refusal(() => metadataFrame({ a: "1", b: "2" }, small)).reason).toBe("bad_metadata");
    expect(refusal(() => resolveMetadataLimits({ maxMetadataBytes: 0 })).reason).toBe("bad_option");
    expect(refusal(() => resolveMetadataLimits({ maxMetadataKeyBytes: 1.5 })).reason).toBe("bad_option");
  });
});

describe("metadata a receiver judges", () => {
  it("accepts what a client would send, and reserved keys (a newer runtime's)", () => {
    expect(receivedMetadataProblem(undefined, D)).toBeUndefined();
    expect(receivedMetadataProblem(entries({ a: "1", "protocast-x": "2" }), D)).toBeUndefined();
  });

  it.each([
    ["a duplicate key", { entries: [{ key: "a", value: "1" }, { key: "a", value: "2" }] }, /occurs twice/],
    ["an uppercase key", entries({ A: "1" }), /not lowercase/],
    ["too many entries", entries(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, ""]))), /more than 16/],
    ["a long value", entries({ a: "x".repeat(1025) }), /longer than 1024 bytes/],
  ])("refuses %s with INVALID_ARGUMENT bad_metadata", (_name, m, message) => {
    const e = receivedMetadataProblem(m, D);
    expect(e?.code).toBe(Code.InvalidArgument);
    expect(e?.reason).toBe("bad_metadata");
    expect(e?.message).toMatch(message);
  });
});

describe("views and merging", () => {
  it("a received view is frozen and has no prototype: absent keys are undefined, whatever their name", () => {
    const view = metadataView(entries({ a: "1" }));
    expect(view).toEqual({ a: "1" });
    expect(Object.isFrozen(view)).toBe(true);
    expect(view["constructor"]).toBeUndefined();
    expect(view["toString"]).toBeUndefined();
    expect(metadataView(undefined)).toBe(NO_METADATA);
    expect(metadataView({ entries: [] })).toBe(NO_METADATA);
  });

  it("a call's own metadata wins over the connection's defaults, key by key", () => {
    expect(mergeMetadata({ tenant: "t1", locale: "en" }, { locale: "fr", extra: "x" })).toEqual({ tenant: "t1", locale: "fr", extra: "x" });
    const own = { a: "1" };
    expect(mergeMetadata(undefined, own)).toBe(own);
    expect(mergeMetadata({}, own)).toBe(own);
    const defaults = { b: "2" };
    expect(mergeMetadata(defaults, undefined)).toBe(defaults);
  });
});
