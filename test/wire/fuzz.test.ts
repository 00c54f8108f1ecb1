/**
 * Hostile input: whatever the bytes, decodeEnvelope returns an envelope or throws the typed
 * "bad_envelope" error, and when it returns one, protobuf-es reads the very same content from
 * those bytes (so the codec never accepts what the reference refuses, or reads it differently).
 * About 22k cases in all, a few seconds.
 */
import { describe, expect, test } from "vitest";
import { fc } from "@fast-check/vitest";
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { Code } from "../../runtime/errors/code.js";
import { ProtocastError } from "../../runtime/errors/protocast-error.js";
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Envelope } from "../../runtime/wire/envelope.js";
import { envelope } from "./arbitraries.js";
import { referenceDecode } from "./reference.js";

function decodeOrError(bytes: Uint8Array): Envelope | ProtocastError {
  try {
    return decodeEnvelope(bytes);
  } catch (e) {
    if (!(e instanceof ProtocastError)) throw new Error(`decodeEnvelope threw a non-ProtocastError: ${String(e)}`);
    return e;
  }
}

function referenceOrUndefined(bytes: Uint8Array): Envelope | undefined {
  try {
    return referenceDecode(bytes);
  } catch {
    return undefined;
  }
}

/** Checks one input; true when it decoded. */
function check(bytes: Uint8Array): boolean {
  const result = decodeOrError(bytes);
  if (result instanceof ProtocastError) {
    expect(result.code).toBe(Code.InvalidArgument);
    expect(result.reason).toBe("bad_envelope");
    expect(result.closeCode).toBe(CloseCode.ProtocolViolation);
    return false;
  }
  expect(referenceOrUndefined(bytes)).toStrictEqual(result);
  return true;
}

/**
 * Runs `check` over an arbitrary and requires some inputs to decode: a generator that only
 * ever produced rejected input would test nothing but the error path.
 */
function hostile<T>(arb: fc.Arbitrary<T>, toBytes: (v: T) => Uint8Array, numRuns: number, minAccepted: number): void {
  let accepted = 0;
  fc.assert(
    fc.property(arb, (v) => {
      if (check(toBytes(v))) accepted++;
    }),
    { numRuns },
  );
  expect(accepted).toBeGreaterThanOrEqual(minAccepted);
}

type Mutation =
  | { kind: "truncate"; at: number }
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; byte: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number };

// Bytes that change a parse the most: continuation bits, group and invalid wire types, zero.
const nastyByte = fc.oneof(fc.constantFrom(0x00, 0x7f, 0x80, 0xff, 0x0b, 0x0c, 0x0e, 0x0f, 0x1b, 0x1c), fc.nat(255));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: nastyByte }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(input: Uint8Array, list: readonly Mutation[]): Uint8Array {
  let bytes = input.slice();
  for (const m of list) {
    const at = m.at % (bytes.length + 1);
    switch (m.kind) {
      case "truncate":
        bytes = bytes.slice(0, at);
        break;
      case "flip":
        if (at < bytes.length) bytes[at] = bytes[at]! ^ (1 << m.bit);
        break;
      case "set":
        if (at < bytes.length) bytes[at] = m.byte;
        break;
      case "insert": {
        const out = new Uint8Array(bytes.length + m.bytes.length);
        out.set(bytes.subarray(0, at));
        out.set(m.bytes, at);
        out.set(bytes.subarray(at), at + m.bytes.length);
        bytes = out;
        break;
      }
      case "delete":
        bytes = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + m.length)]);
        break;
    }
  }
  return bytes;
}

/**
 * Well-formed wire records that follow the schema most of the time: defined fields usually
 * with their own wire type (values anywhere in 64 bits, strings sometimes invalid UTF-8),
 * sometimes with another one, plus unknown fields. Unlike random bytes these mostly parse, so
 * they exercise acceptance: overlong values, repeated and merged frames, values past 2^53.
 */
type WireRecord = { no: number } & (
  | { wt: WireType.Varint; v: bigint | Uint8Array }
  | { wt: WireType.Bit64; v: bigint }
  | { wt: WireType.Bit32; v: number }
  | { wt: WireType.LengthDelimited; v: Uint8Array | WireRecord[] }
);

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 300n }),
  fc.constantFrom(2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);
/** A varint as raw bytes, possibly overlong, its last byte carrying any bits (past 64 too). */
const varintGroup = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(127) });
const rawVarint = fc
  .oneof(fc.array(varintGroup, { minLength: 1, maxLength: 10 }), fc.array(varintGroup, { minLength: 10, maxLength: 10 }))
  .map((groups) => new Uint8Array(groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g))));
const varintValue = fc.oneof({ weight: 3, arbitrary: u64 }, { weight: 1, arbitrary: rawVarint });
const utf8Bytes = fc.string({ unit: "binary", maxLength: 8 }).map((s) => new TextEncoder().encode(s));
const lenValue = fc.oneof(fc.uint8Array({ maxLength: 12 }), utf8Bytes);

function varintRecord(no: number): fc.Arbitrary<WireRecord> {
  return fc.record({ no: fc.constant(no), wt: fc.constant(WireType.Varint as const), v: varintValue });
}

function lenRecord(no: number, v: fc.Arbitrary<Uint8Array | WireRecord[]>): fc.Arbitrary<WireRecord> {
  return fc.record({ no: fc.constant(no), wt: fc.constant(WireType.LengthDelimited as const), v });
}

function anyRecord(no: fc.Arbitrary<number>): fc.Arbitrary<WireRecord> {
  return fc.oneof(
    fc.record({ no, wt: fc.constant(WireType.Varint as const), v: u64 }),
    fc.record({ no, wt: fc.constant(WireType.Bit64 as const), v: u64 }),
    fc.record({ no, wt: fc.constant(WireType.Bit32 as const), v: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
    fc.record({ no, wt: fc.constant(WireType.LengthDelimited as const), v: lenValue }),
  );
}

function fieldRecord(field: DescField): fc.Arbitrary<WireRecord> {
  switch (field.fieldKind) {
    case "scalar":
      if (field.scalar === ScalarType.STRING) return lenRecord(field.number, fc.oneof(utf8Bytes, utf8Bytes, lenValue));
      if (field.scalar === ScalarType.BYTES) return lenRecord(field.number, lenValue);
      return varintRecord(field.number);
    case "enum":
      return varintRecord(field.number);
    case "message":
      return lenRecord(field.number, records(field.message));
    case "list":
      if (field.listKind !== "message") throw new Error("no repeated scalars in envelope.proto");
      return lenRecord(field.number, records(field.message));
    case "map":
      throw new Error("no maps in envelope.proto");
  }
}

function records(desc: DescMessage): fc.Arbitrary<WireRecord[]> {
  const last = Math.max(...desc.fields.map((f) => f.number));
  return fc.array(
    fc.oneof(
      { weight: 8, arbitrary: fc.oneof(...desc.fields.map(fieldRecord)) },
      { weight: 1, arbitrary: anyRecord(fc.integer({ min: 1, max: last })) },
      { weight: 1, arbitrary: anyRecord(fc.integer({ min: last + 1, max: last + 40 })) },
    ),
    { maxLength: desc === EnvelopeSchema ? 4 : 6 },
  );
}

function writeRecords(list: readonly WireRecord[]): Uint8Array {
  const w = new BinaryWriter();
  for (const r of list) {
    w.tag(r.no, r.wt);
    switch (r.wt) {
      case WireType.Varint: if (r.v instanceof Uint8Array) w.raw(r.v); else w.uint64(r.v); break;
      case WireType.Bit64: w.fixed64(r.v); break;
      case WireType.Bit32: w.fixed32(r.v); break;
      case WireType.LengthDelimited: w.bytes(r.v instanceof Uint8Array ? r.v : writeRecords(r.v)); break;
    }
  }
  return w.finish();
}

describe("decodeEnvelope on hostile input", () => {
  test("random bytes", () => {
    hostile(fc.uint8Array({ maxLength: 400 }), (bytes) => bytes, 8000, 0);
  });

  test("mutated valid encodings", () => {
    const input = fc.tuple(envelope, fc.array(mutation, { minLength: 1, maxLength: 4 }));
    hostile(input, ([env, list]) => mutate(encodeEnvelope(env), list), 8000, 300);
  });

  test("random well-formed wire records", () => {
    hostile(records(EnvelopeSchema), writeRecords, 6000, 800);
  });
});
