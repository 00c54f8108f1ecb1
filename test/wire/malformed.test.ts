/**
 * Hand-made bytes at the edges of the wire format. Tags below are written out:
 * 08 = Envelope.seq, 10 = Envelope.ackSeq, 2a = frame call (field 5), 6a = event (13),
 * 42 = subscribe (8), 8a 01 = ping (17); f0 01 / f3 01 = field 30, wire type 0 / 3.
 */
import { describe, expect, test } from "vitest";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { Code } from "../../runtime/errors/code.js";
import { ProtocastError } from "../../runtime/errors/protocast-error.js";
import { decodeEnvelope, decodeIncoming } from "../../runtime/wire/decode.js";
import { referenceDecode } from "./reference.js";

function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** A frame field: tag byte(s), then the body with its one-byte length. */
function frame(tag: string, body: string): string {
  return `${tag} ${(body.replace(/\s+/g, "").length / 2).toString(16).padStart(2, "0")} ${body}`;
}

function expectBadEnvelope(bytes: Uint8Array, detail: RegExp): void {
  let thrown: unknown;
  try {
    decodeEnvelope(bytes);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ProtocastError);
  const error = thrown as ProtocastError;
  expect(error.code).toBe(Code.InvalidArgument);
  expect(error.reason).toBe("bad_envelope");
  expect(error.closeCode).toBe(CloseCode.ProtocolViolation);
  expect(error.message).toMatch(detail);
}

const deepGroups = "f3 01 ".repeat(10_000);

describe("malformed envelopes give the typed error", () => {
  test.each([
    ["empty input", "", /no frame/],
    ["only seq", "08 01", /no frame/],
    ["seq and ackSeq but no frame", "08 01 10 02", /no frame/],
    ["only unknown fields", "f0 01 05", /no frame/],
    ["varint of 11 bytes", "08 80 80 80 80 80 80 80 80 80 80 01 " + frame("8a 01", ""), /longer than 10 bytes/],
    ["unknown varint of 11 bytes", "f0 01 80 80 80 80 80 80 80 80 80 80 01 " + frame("8a 01", ""), /longer than 10 bytes/],
    ["varint cut by the end of input", "08 80", /truncated/],
    ["length prefix 2^31", "2a 80 80 80 80 08 08 01", /runs past the end/],
    ["length prefix 2^32-1", "2a ff ff ff ff 0f 08 01", /runs past the end/],
    ["frame longer than the input", "2a 05 08 01", /runs past the end/],
    ["string running past the end of its frame", "2a 03 12 05 61 62 63 64 65", /runs past the end/],
    ["varint running past the end of its frame", "2a 01 08 96 01", /truncated/],
    ["unknown fixed64 cut short", "f1 01 01 02 03", /truncated/],
    ["unknown fixed32 cut short inside a frame", "2a 03 3d 01 02", /truncated/],
    ["group at the top level", "f3 01 f4 01 " + frame("8a 01", ""), /group/],
    ["lone end-group tag", "f4 01 " + frame("8a 01", ""), /group/],
    ["group inside a frame", frame("2a", "3b 3c"), /group/],
    ["10,000 nested group starts", deepGroups, /group/],
    ["wire type 6", "f6 01 00 " + frame("8a 01", ""), /invalid wire type 6/],
    ["wire type 7 inside a frame", frame("2a", "3f 00"), /invalid wire type 7/],
    ["field number 0", "00 00", /field number 0/],
    ["field number 0 in a long tag", "80 00 00", /field number 0/],
    ["tag wider than 32 bits", "80 80 80 80 10 00", /does not fit 32 bits/],
    ["seq sent length-delimited", "0a 00 " + frame("8a 01", ""), /Envelope field 1 has the wrong wire type 2/],
    ["frame sent as a varint", "28 01", /Envelope field 5 has the wrong wire type 0/],
    ["Call.id sent length-delimited", frame("2a", "0a 00"), /Call field 1 has the wrong wire type 2/],
    ["Call.method sent as a varint", frame("2a", "10 01"), /Call field 2 has the wrong wire type 0/],
    ["seq of 2^53", "08 80 80 80 80 80 80 80 10 " + frame("8a 01", ""), /above 2\^53-1/],
    ["seq of 2^64-1", "08 ff ff ff ff ff ff ff ff ff 01 " + frame("8a 01", ""), /above 2\^53-1/],
    ["event offset of 2^53", frame("6a", "18 80 80 80 80 80 80 80 10"), /above 2\^53-1/],
    ["gap offset of 2^53", frame("4a", "32 09 08 80 80 80 80 80 80 80 10"), /above 2\^53-1/],
    ["byte ff in a string", frame("2a", "12 01 ff"), /Call.method is not valid UTF-8/],
    ["overlong NUL", frame("2a", "12 02 c0 80"), /not valid UTF-8/],
    ["encoded surrogate", frame("2a", "12 03 ed a0 80"), /not valid UTF-8/],
    ["code point past U+10FFFF", frame("2a", "12 04 f4 90 80 80"), /not valid UTF-8/],
    ["truncated sequence in a long string", frame("2a", "12 14 " + "61 ".repeat(19) + "e2"), /not valid UTF-8/],
    ["invalid byte in a member name", frame("4a", "3a 03 0a 01 80"), /Member.clientId is not valid UTF-8/],
  ])("%s", (_name, bytes, detail) => {
    expectBadEnvelope(hex(bytes), detail);
  });

  test("input that is not a Uint8Array", () => {
    expectBadEnvelope("08 01" as unknown as Uint8Array, /not a Uint8Array/);
    expectBadEnvelope(new ArrayBuffer(4) as unknown as Uint8Array, /not a Uint8Array/);
  });
});

describe("valid edge encodings decode like protobuf-es", () => {
  test.each([
    ["a frame with an empty body", frame("8a 01", "")],
    ["seq of 2^53-1", "08 ff ff ff ff ff ff ff 0f " + frame("8a 01", "")],
    ["uint32 from a 10-byte varint keeps the low 32 bits", frame("2a", "08 ff ff ff ff ff ff ff ff ff 01")],
    ["uint32 from a 5-byte varint with bits past 32", frame("2a", "08 ff ff ff ff 7f")],
    ["uint64 with bits only past bit 63", frame("8a 01", "08 80 80 80 80 80 80 80 80 80 7e")],
    ["bool with bits only past bit 63 is false", frame("42", "20 80 80 80 80 80 80 80 80 80 7e")],
    ["bool of 2^32 is true", frame("42", "20 80 80 80 80 10")],
    ["bool of 2^63 is true", frame("42", "20 80 80 80 80 80 80 80 80 80 01")],
    ["enum -1 in 10 bytes", frame("3a", "10 ff ff ff ff ff ff ff ff ff 01")],
    ["enum 0xffffffff in 5 bytes reads as -1", frame("3a", "10 ff ff ff ff 0f")],
    ["length prefix written in 3 bytes", "2a 84 80 00 08 07 20 01"],
    ["leading BOM in a string is text", frame("2a", "12 04 ef bb bf 61")],
    ["string of 13 ASCII bytes", frame("2a", "12 0d " + "61 ".repeat(13))],
    ["string of 12 ASCII bytes", frame("2a", "12 0c " + "61 ".repeat(12))],
    ["short non-ASCII string", frame("2a", "12 03 61 c3 a9")],
    ["seq given twice: the last wins", "08 01 08 02 " + frame("8a 01", "")],
    ["a different frame kind replaces the earlier one", frame("2a", "08 01") + " " + frame("8a 01", "08 05")],
    ["the same frame kind merges", frame("2a", "08 01 12 01 61") + " " + frame("2a", "20 07")],
    ["members of two Subscribed frames append", frame("4a", "3a 02 0a 00 32 00") + " " + frame("4a", "3a 00 32 02 08 01")],
    ["unknown fields of every wire type", "f0 01 01 f1 01 0102030405060708 f2 01 02 aa bb f5 01 01020304 " + frame("2a", "38 01 39 0102030405060708 3a 00 3d 01020304 08 09")],
    ["unknown field with a 5-byte tag", "f8 ff ff ff 0f 01 " + frame("8a 01", "")],
  ])("%s", (_name, text) => {
    const bytes = hex(text);
    expect(decodeEnvelope(bytes)).toStrictEqual(referenceDecode(bytes));
  });

  test("10,000 nested groups are refused at the first tag", () => {
    // The error names the first tag's field, and what follows it is never read: a truncated
    // varint at the end changes nothing.
    const refusal = "bad envelope: group (wire type 3) in Envelope field 30";
    expect(() => decodeEnvelope(hex(deepGroups))).toThrow(refusal);
    expect(() => decodeEnvelope(hex(deepGroups + "08 ff"))).toThrow(refusal);
  });
});

// PROTOCOL.md, "Unknown frame kinds": fields 26-99 are frame kinds added later in v1.
describe("frame kinds newer than this implementation", () => {
  test("an envelope with only a newer frame kind is returned by decodeIncoming", () => {
    expect(decodeIncoming(hex("08 05 d2 01 00"))).toStrictEqual({ seq: 5, ackSeq: 0, frame: undefined, newerFrameField: 26 });
    expect(decodeIncoming(hex("10 03 98 06 01 d2 01 00"))).toStrictEqual({
      seq: 0,
      ackSeq: 3,
      frame: undefined,
      newerFrameField: 99,
    });
  });

  test("decodeEnvelope refuses it", () => {
    expectBadEnvelope(hex("08 05 d2 01 00"), /no frame of a known kind \(field 26\)/);
  });

  test("a known frame wins over a newer one", () => {
    expect(decodeIncoming(hex("d2 01 00 8a 01 02 08 07"))).toStrictEqual({
      seq: 0,
      ackSeq: 0,
      frame: { case: "ping", value: { sentAtMs: 7 } },
    });
  });

  test("fields from 100 up are header fields, not frames", () => {
    expect(() => decodeIncoming(hex("08 05 a0 06 01"))).toThrow(/envelope has no frame$/);
  });

  test("a group in the newer range is still refused", () => {
    expect(() => decodeIncoming(hex("d3 01 d4 01"))).toThrow(/group/);
  });
});
