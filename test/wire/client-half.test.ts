// The client's half of the envelope codec: encodeEnvelopeFromClient encodes what a client sends
// exactly as encodeEnvelope does, and decodeFromServer reads what a server sends exactly as
// decodeIncoming does; a frame of the other side's kinds is refused when encoding and ignored
// when decoding, as a frame of a newer kind is.
import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import { CLIENT_CASES } from "../../codegen/print-wire-codec.js";
import { ProtocastError } from "../../runtime/errors/protocast-error.js";
import { decodeFromServer, decodeIncoming } from "../../runtime/wire/decode.js";
import { encodeEnvelope, encodeEnvelopeFromClient } from "../../runtime/wire/encode.js";
import { FRAME_FIELD, type Envelope, type FrameCase } from "../../runtime/wire/envelope.js";
import { runs } from "../support/depth.js";
import { envelope, envelopeWith, frameCases, frameOf } from "./arbitraries.js";

const spec = CLIENT_CASES.get("protocast.v1.Envelope")!;
const camel = (name: string): FrameCase => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as FrameCase;
const sends = new Set(spec.sends.map(camel));
const receives = new Set(spec.receives.map(camel));

describe("the client's half of the envelope codec", () => {
  test("names only frame kinds of protocast.v1, and every kind is sent by one side or the other", () => {
    for (const kind of [...sends, ...receives]) expect(frameCases).toContain(kind);
    // What a client receives is what a server sends.
    expect(frameCases.filter((kind) => !sends.has(kind) && !receives.has(kind))).toEqual([]);
  });

  test.prop([envelope], { numRuns: runs(600) })("encodes a client's frame as encodeEnvelope does, and refuses the others", (env) => {
    if (sends.has(env.frame.case)) {
      expect(encodeEnvelopeFromClient(env)).toStrictEqual(encodeEnvelope(env));
    } else {
      expect(() => encodeEnvelopeFromClient(env)).toThrow(ProtocastError);
      expect(() => encodeEnvelopeFromClient(env)).toThrow(/a case of protocast\.v1\.Envelope\.frame that a client sends/);
    }
  });

  test.prop([envelope], { numRuns: runs(600) })("reads a server's frame as decodeIncoming does, and skips the others", (env) => {
    const bytes = encodeEnvelope(env);
    if (receives.has(env.frame.case)) {
      expect(decodeFromServer(bytes)).toStrictEqual(decodeIncoming(bytes));
    } else {
      expect(decodeFromServer(bytes)).toStrictEqual({ seq: env.seq, ackSeq: env.ackSeq, frame: undefined, newerFrameField: FRAME_FIELD[env.frame.case] });
    }
  });

  // Each kind gets runs of its own, whatever the mixed properties above pick.
  describe.each(frameCases)("%s", (kind) => {
    test.prop([envelopeWith(frameOf(kind))], { numRuns: runs(20) })("both halves agree with the whole codec", (env) => {
      const bytes = encodeEnvelope(env);
      if (sends.has(kind)) expect(encodeEnvelopeFromClient(env)).toStrictEqual(bytes);
      if (receives.has(kind)) expect(decodeFromServer(bytes)).toStrictEqual(decodeIncoming(bytes));
    });
  });

  // A oneof case replaces an earlier one, so a skipped frame after a read one leaves no frame.
  test.prop([envelopeWith(fc.constantFrom(...frameCases.filter((k) => receives.has(k))).chain(frameOf)), envelopeWith(fc.constantFrom(...frameCases.filter((k) => !receives.has(k))).chain(frameOf))], {
    numRuns: runs(100),
  })("a client's frame after a server's replaces it", (read, skipped) => {
    const bytes = new Uint8Array([...encodeEnvelope(read), ...encodeEnvelope({ ...skipped, seq: 0, ackSeq: 0 } satisfies Envelope)]);
    expect(decodeFromServer(bytes)).toStrictEqual({ seq: read.seq, ackSeq: read.ackSeq, frame: undefined, newerFrameField: FRAME_FIELD[read.frame.case] });
  });
});
