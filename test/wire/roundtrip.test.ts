import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import { runs } from "../support/depth.js";
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeChannelEvent, encodeEnvelope } from "../../runtime/wire/encode.js";
import { envelope, envelopeWith, frameCases, frameOf, frameValues } from "./arbitraries.js";

describe("envelope codec round trip", () => {
  test.prop([envelope], { numRuns: runs(600) })("decode(encode(e)) equals e for any frame", (env) => {
    expect(decodeEnvelope(encodeEnvelope(env))).toStrictEqual(env);
  });

  // The mixed property above picks kinds at random; this guarantees each kind its own runs.
  describe.each(frameCases)("%s", (kind) => {
    test.prop([envelopeWith(frameOf(kind))], { numRuns: runs(50) })("round trip", (env) => {
      expect(decodeEnvelope(encodeEnvelope(env))).toStrictEqual(env);
    });
  });

  test.prop([frameValues.event])("a channel event is encoded with seq and ackSeq 0", (event) => {
    const bytes = encodeChannelEvent(event);
    expect(bytes).toStrictEqual(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "event", value: event } }));
    expect(decodeEnvelope(bytes)).toStrictEqual({ seq: 0, ackSeq: 0, frame: { case: "event", value: event } });
  });

  test.prop([fc.uint8Array({ minLength: 1, maxLength: 32 })])("payloads are views into the input", (payload) => {
    const input = encodeEnvelope({ seq: 1, ackSeq: 0, frame: { case: "reply", value: { id: 1, payload } } });
    const decoded = decodeEnvelope(input);
    if (decoded.frame.case !== "reply") throw new Error("expected a reply");
    expect(decoded.frame.value.payload.buffer).toBe(input.buffer);
  });
});
