import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create, fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { Code, ProtocastError, type AnyMethodDef, type MessageCodec, type ServiceDefinition } from "protocast";
import { describe, expect, it } from "vitest";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { ExchangeRequestSchema, TreeSchema } from "../../generated/acme/kinds/v1/kinds_pb.js";
import { KindsService } from "../../generated/acme/kinds/v1/kinds_protocast.js";
import { LegacyService } from "../../generated/acme/kinds/v1/legacy_protocast.js";
import { ShowcaseAdminService, ShowcaseService } from "../../generated/acme/showcase/v1/showcase_protocast.js";
import { ROOT } from "./buf-generate.js";
import { runs } from "../support/depth.js";
import { initOf, messageOf } from "./message-arbitrary.js";

// The generated codecs against protobuf-es, the reference they must match byte for byte.

interface Subject {
  readonly desc: DescMessage;
  readonly codec: MessageCodec;
}

const services: ServiceDefinition<unknown, unknown, unknown, unknown>[] = [KindsService, LegacyService, ShowcaseService, ShowcaseAdminService, ChatService, BenchService];

function subjectsOf(def: AnyMethodDef): Subject[] {
  if (def.kind === "call") return [{ desc: def.input, codec: def.inputCodec }, { desc: def.output, codec: def.outputCodec }];
  return [{ desc: def.message, codec: def.messageCodec }];
}

const subjects = new Map<string, Subject>();
for (const service of services) for (const def of service.byPath.values()) for (const s of subjectsOf(def)) subjects.set(s.desc.typeName, s);
const all = [...subjects.values()];
const kinds = all.filter((s) => s.desc.typeName.startsWith("acme.kinds."));

const RUNS = { numRuns: runs(100, 500) };
/**
 * Runs per property for one message type, from the base of the deep run: the kinds fixture holds
 * every field kind and gets the most; the services' own messages repeat those kinds in simpler
 * shapes and get a third, which keeps the suite's time in bounds as services are added. The
 * everyday run (`npm test`) tries a fifth of the deep run's cases.
 */
function runsFor(typeName: string, base: number): { numRuns: number } {
  const deep = typeName.startsWith("acme.kinds.") ? base : Math.ceil(base / 3);
  return { numRuns: runs(Math.ceil(deep / 5), deep) };
}

/** Decoding `bytes` must give fromBinary's message, or a ProtocastError; never anything else. */
function decodesLikeReference({ desc, codec }: Subject, bytes: Uint8Array): void {
  let reference: { ok: true; message: Message } | { ok: false; error: unknown };
  try {
    reference = { ok: true, message: fromBinary(desc, bytes) };
  } catch (error) {
    reference = { ok: false, error };
  }
  let decoded: unknown;
  try {
    decoded = codec.decode(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocastError);
    expect([Code.InvalidArgument, Code.ResourceExhausted]).toContain((e as ProtocastError).code);
    return;
  }
  expect(reference.ok, `decoded bytes that protobuf-es refuses: ${reference.ok ? "" : String(reference.error)}`).toBe(true);
  if (reference.ok) expect(decoded).toStrictEqual(reference.message);
}

describe.each(all.map((s) => [s.desc.typeName, s] as const))("codec of %s", (_name, subject) => {
  const { desc, codec } = subject;

  it("encodes a message to the bytes of toBinary, and measures them", () => {
    fc.assert(
      fc.property(messageOf(desc), (m) => {
        const bytes = codec.encode(m);
        expect(bytes).toEqual(toBinary(desc, m));
        expect(codec.size(m)).toBe(bytes.length);
      }),
      runsFor(desc.typeName, 300),
    );
  });

  it("encodes an init shape as toBinary(create(init)) does", () => {
    fc.assert(
      fc.property(initOf(desc), (init) => {
        expect(codec.encode(init as never)).toEqual(toBinary(desc, create(desc, init)));
      }),
      runsFor(desc.typeName, 300),
    );
  });

  it("decodes toBinary's bytes to fromBinary's message, unknown fields included", () => {
    fc.assert(
      fc.property(messageOf(desc), (m) => {
        const bytes = toBinary(desc, m);
        const decoded = codec.decode(bytes);
        const reference = fromBinary(desc, bytes);
        expect(decoded).toStrictEqual(reference);
        // Encoding what was decoded gives the reference's own bytes for its message. (Not always
        // `bytes`: map keys that are lone surrogates all become U+FFFD in UTF-8 and merge into
        // one entry on decoding, in protobuf-es as here.)
        expect(codec.encode(decoded as never)).toEqual(toBinary(desc, reference));
      }),
      runsFor(desc.typeName, 300),
    );
  });

  it("decodes damaged bytes as fromBinary does, or throws a ProtocastError", () => {
    const damaged = messageOf(desc).chain((m) => {
      const bytes = toBinary(desc, m);
      const at = fc.nat({ max: Math.max(bytes.length - 1, 0) });
      return fc.oneof(
        at.map((n) => bytes.subarray(0, n)),
        fc.tuple(at, fc.nat({ max: 7 })).map(([n, bit]) => flip(bytes, n, bit)),
        fc.tuple(at, fc.integer({ min: 0, max: 255 })).map(([n, b]) => splice(bytes, n, b)),
      );
    });
    fc.assert(
      fc.property(damaged, (bytes) => decodesLikeReference(subject, bytes)),
      runsFor(desc.typeName, 600),
    );
  });

  it("decodes arbitrary bytes as fromBinary does, or throws a ProtocastError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => decodesLikeReference(subject, bytes)),
      runsFor(desc.typeName, 600),
    );
  });
});

describe("codecs of the kinds fixture", () => {
  it("decode the messages of other types (declared fields with other wire types) as fromBinary does, or throw", () => {
    const pairs = fc.tuple(fc.constantFrom(...kinds), fc.constantFrom(...kinds));
    fc.assert(
      fc.property(pairs.chain(([from, to]) => messageOf(from.desc).map((m) => [to, toBinary(from.desc, m)] as const)), ([to, bytes]) => decodesLikeReference(to, bytes)),
      RUNS,
    );
  });

  it("accept packed and unpacked encodings of every repeated scalar", () => {
    const codec = KindsService.calls["exchange"]!.inputCodec;
    const w = new BinaryWriter();
    w.tag(35, 0).int32(-5).tag(35, 0).int32(7); // r_int32 unpacked although declared packed
    w.tag(48, 2).fork().int32(1).int32(-2).join(); // r_int32_unpacked packed although declared not
    w.tag(31, 1).double(1.5); // r_double, one unpacked entry
    const bytes = w.finish();
    const decoded = codec.decode(bytes) as unknown as { rInt32: number[]; rInt32Unpacked: number[]; rDouble: number[] };
    expect(decoded).toStrictEqual(fromBinary(ExchangeRequestSchema, bytes));
    expect(decoded.rInt32).toEqual([-5, 7]);
    expect(decoded.rInt32Unpacked).toEqual([1, -2]);
  });

  it("refuse nesting deeper than maxDepth with ResourceExhausted, as protobuf-es refuses it", () => {
    const codec = KindsService.calls["exchange"]!.outputCodec;
    const nested = (depth: number): Uint8Array => {
      // ExchangeResponse.root, then Tree.left depth - 2 times.
      let body: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < depth - 1; i++) body = new BinaryWriter().tag(i === depth - 2 ? 1 : 2, 2).bytes(body).finish();
      return body;
    };
    expect(() => fromBinary(KindsService.calls["exchange"]!.output, nested(100))).not.toThrow();
    expect(codec.decode(nested(100))).toStrictEqual(fromBinary(KindsService.calls["exchange"]!.output, nested(100)));
    expect(() => fromBinary(KindsService.calls["exchange"]!.output, nested(101))).toThrow();
    expect(() => codec.decode(nested(101))).toThrow(expect.objectContaining({ code: Code.ResourceExhausted, reason: "payload_limit" }));
    expect(() => codec.decode(nested(10), { maxDepth: 9 })).toThrow(/maxDepth 9/);
  });

  it("refuse more entries than maxRepeated, and lengths past the end, with typed errors", () => {
    const codec = KindsService.calls["exchange"]!.inputCodec;
    const bytes = codec.encode({ rString: ["a", "b", "c", "d"], mStringString: { a: "1", b: "2" } });
    expect(() => codec.decode(bytes, { maxRepeated: 3 })).toThrow(expect.objectContaining({ code: Code.ResourceExhausted }));
    expect(codec.decode(bytes, { maxRepeated: 4 })).toStrictEqual(fromBinary(ExchangeRequestSchema, bytes));
    const tooLong = Uint8Array.of(0x4a, 0x7f, 1, 2, 3); // f_string says 127 bytes, 3 follow
    expect(() => codec.decode(tooLong)).toThrow(expect.objectContaining({ code: Code.InvalidArgument, reason: "bad_payload" }));
  });

  it("encode what create() would: absent, null and empty values are not written", () => {
    const codec = KindsService.calls["exchange"]!.inputCodec;
    const init = { fString: null, fBytes: [], fInt64: 0, fDouble: -0, oInt32: 0, fTree: { label: "x" }, rTree: [undefined] };
    expect(codec.encode(init as never)).toEqual(toBinary(ExchangeRequestSchema, create(ExchangeRequestSchema, init as never)));
    expect(codec.encode(undefined as never)).toEqual(new Uint8Array(0));
    expect(() => codec.encode({ fInt32: 1.5 })).toThrow(ProtocastError);
    expect(() => toBinary(ExchangeRequestSchema, create(ExchangeRequestSchema, { fInt32: 1.5 }))).toThrow();
    expect(TreeSchema.typeName).toBe("acme.kinds.v1.Tree");
  });

  it("leave proto2 and wrapper messages to reflection, and say so in the generated file", () => {
    const legacy = readFileSync(join(ROOT, "generated/acme/kinds/v1/legacy_protocast.ts"), "utf8");
    expect(legacy).toMatch(/acme\.kinds\.v1\.LookupResponse keeps protobuf-es reflection: .*proto2/);
    expect(legacy).not.toMatch(/function read\$/);
    const kindsFile = readFileSync(join(ROOT, "generated/acme/kinds/v1/kinds_protocast.ts"), "utf8");
    expect(kindsFile).toMatch(/acme\.kinds\.v1\.NoticesResponse keeps protobuf-es reflection: .*wrapper/);
    expect(kindsFile).toMatch(/"acme\.kinds\.v1\.ExchangeRequest": payloadCodec\(/);
  });
});

function flip(bytes: Uint8Array, at: number, bit: number): Uint8Array {
  const copy = bytes.slice();
  if (copy.length > 0) copy[at] = copy[at]! ^ (1 << bit);
  return copy;
}

function splice(bytes: Uint8Array, at: number, byte: number): Uint8Array {
  const copy = new Uint8Array(bytes.length + 1);
  copy.set(bytes.subarray(0, at));
  copy[at] = byte;
  copy.set(bytes.subarray(at), at + 1);
  return copy;
}
