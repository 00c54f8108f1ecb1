/**
 * Byte compatibility with protobuf-es, the reference implementation of envelope.proto:
 * the same bytes out for the same content, the same content in for the same bytes.
 */
import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import { runs } from "../support/depth.js";
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Envelope } from "../../runtime/wire/envelope.js";
import { envelope, frameValues } from "./arbitraries.js";
import { referenceDecode, referenceEncode } from "./reference.js";
import { insertions, withUnknownFields } from "./unknown-fields.js";

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

describe("compatibility with protobuf-es", () => {
  test.prop([envelope], { numRuns: runs(600) })("encodes the same bytes as toBinary", (env) => {
    expect(encodeEnvelope(env)).toStrictEqual(referenceEncode(env));
  });

  // Outputs may share a pooled block; a later encode must never touch an earlier output.
  test.prop([fc.array(envelope, { minLength: 2, maxLength: 60 })], { numRuns: runs(50) })(
    "earlier outputs stay intact while later envelopes are encoded",
    (list) => {
      const outputs = list.map((env) => encodeEnvelope(env));
      list.forEach((env, i) => expect(outputs[i]).toStrictEqual(referenceEncode(env)));
    },
  );

  test.prop([envelope], { numRuns: runs(600) })("decodes what fromBinary decodes", (env) => {
    const bytes = referenceEncode(env);
    const decoded = decodeEnvelope(bytes);
    expect(decoded).toStrictEqual(referenceDecode(bytes));
    expect(decoded).toStrictEqual(env);
  });

  test.prop([envelope, insertions], { numRuns: runs(300) })(
    "skips unknown fields at the top level and inside frames, like fromBinary",
    (env, list) => {
      const bytes = withUnknownFields(encodeEnvelope(env), list);
      const decoded = decodeEnvelope(bytes);
      expect(decoded).toStrictEqual(referenceDecode(bytes));
      expect(decoded).toStrictEqual(env);
    },
  );

  // Two encodings back to back form one valid message: scalars take the later value, the same
  // frame kind merges (repeated fields append), a different kind replaces the earlier frame.
  test.prop([envelope, envelope], { numRuns: runs(300) })("merges a repeated frame like fromBinary", (a, b) => {
    const bytes = concat(encodeEnvelope(a), encodeEnvelope(b));
    expect(decodeEnvelope(bytes)).toStrictEqual(referenceDecode(bytes));
  });

  const sameKind = fc.constantFrom("subscribed" as const, "presence" as const, "welcome" as const);
  test.prop([sameKind.chain((kind) => fc.tuple(frameValues[kind], frameValues[kind]).map(([x, y]) => [kind, x, y] as const))], {
    numRuns: runs(100),
  })("merges two frames of the same kind with nested and repeated messages", ([kind, x, y]) => {
    const first = encodeEnvelope({ seq: 1, ackSeq: 0, frame: { case: kind, value: x } as Envelope["frame"] });
    const second = encodeEnvelope({ seq: 0, ackSeq: 2, frame: { case: kind, value: y } as Envelope["frame"] });
    const bytes = concat(first, second);
    expect(decodeEnvelope(bytes)).toStrictEqual(referenceDecode(bytes));
  });

  // TextEncoder turns a lone surrogate into U+FFFD; protobuf-es writes through it too.
  const illFormed = fc.string({ unit: fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff", "a", "é", "😀"), maxLength: 30 });
  test.prop([illFormed, illFormed])("writes strings with lone surrogates as toBinary does", (method, key) => {
    const env: Envelope = {
      seq: 3,
      ackSeq: 0,
      frame: { case: "call", value: { id: 1, method, payload: new Uint8Array(0), timeoutMs: 0, idempotencyKey: key } },
    };
    const bytes = encodeEnvelope(env);
    expect(bytes).toStrictEqual(referenceEncode(env));
    expect(decodeEnvelope(bytes)).toStrictEqual(referenceDecode(bytes));
  });
});
