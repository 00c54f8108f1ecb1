/**
 * Checks the test vectors of PROTOCOL.md against the codec and against protobuf-es. The spec
 * must carry at least 10 vectors and one for every frame kind of Envelope's oneof.
 */
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { fromJsonString, toBinary } from "@bufbuild/protobuf";
import { EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import { referenceFromJson } from "./reference.js";
import { parseVectors, toHex } from "./vectors.js";

const SPEC = new URL("../../PROTOCOL.md", import.meta.url);
const vectors = parseVectors(readFileSync(SPEC, "utf8"));
const frameKinds = EnvelopeSchema.oneofs.find((o) => o.name === "frame")?.fields.map((f) => f.localName) ?? [];

describe("PROTOCOL.md test vectors", () => {
  test("there are at least 10, with distinct names", () => {
    expect(vectors.length).toBeGreaterThanOrEqual(10);
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
  });

  test("every frame kind has a vector", () => {
    expect(frameKinds.length).toBe(23);
    const covered = new Set<string | undefined>(vectors.map((v) => fromJsonString(EnvelopeSchema, v.json).frame.case));
    expect(frameKinds.filter((kind) => !covered.has(kind))).toEqual([]);
  });

  test.each(vectors.map((v) => [v.name, v] as const))("%s", (_name, vector) => {
    const expected = referenceFromJson(vector.json);
    const decoded = decodeEnvelope(vector.bytes);
    expect(decoded).toStrictEqual(expected);
    expect(toHex(encodeEnvelope(decoded))).toBe(toHex(vector.bytes));
    // The json and hex of a vector must agree with the reference implementation as well.
    expect(toHex(toBinary(EnvelopeSchema, fromJsonString(EnvelopeSchema, vector.json)))).toBe(toHex(vector.bytes));
  });
});
