import { describe, expect, test } from "vitest";
import { Code } from "../../runtime/errors/code.js";
import { ProtocastError } from "../../runtime/errors/protocast-error.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Envelope, Frame } from "../../runtime/wire/envelope.js";
import { toHex } from "./vectors.js";

const ping = (sentAtMs: number): Frame => ({ case: "ping", value: { sentAtMs } });
const cancel = (id: number): Frame => ({ case: "cancel", value: { id } });
const error = (code: number): Frame => ({ case: "error", value: { id: 1, code, message: "", reason: "", retryAfterMs: 0 } });

describe("encodeEnvelope", () => {
  test.each<[string, Envelope, RegExp]>([
    ["a negative uint32", { seq: 0, ackSeq: 0, frame: cancel(-1) }, /Cancel.id: -1 is not a uint32/],
    ["a uint32 past 2^32-1", { seq: 0, ackSeq: 0, frame: cancel(2 ** 32) }, /Cancel.id: 4294967296 is not a uint32/],
    ["a fractional uint32", { seq: 0, ackSeq: 0, frame: cancel(1.5) }, /Cancel.id: 1.5/],
    ["NaN", { seq: 0, ackSeq: 0, frame: cancel(Number.NaN) }, /Cancel.id: NaN/],
    ["a 64-bit value past 2^53-1", { seq: 2 ** 53, ackSeq: 0, frame: ping(0) }, /Envelope.seq: 9007199254740992/],
    ["a negative 64-bit value", { seq: 0, ackSeq: -5, frame: ping(0) }, /Envelope.ackSeq: -5/],
    ["a fractional 64-bit value", { seq: 0, ackSeq: 0, frame: ping(0.5) }, /Ping.sentAtMs: 0.5/],
    ["an infinite 64-bit value", { seq: 0, ackSeq: 0, frame: ping(Infinity) }, /Ping.sentAtMs: Infinity/],
    ["an enum past int32", { seq: 0, ackSeq: 0, frame: error(2 ** 31) }, /Error.code: 2147483648 is not an int32/],
    ["an unknown frame kind", { seq: 0, ackSeq: 0, frame: { case: "nope" } as unknown as Frame }, /Envelope.frame: nope/],
  ])("refuses %s", (_name, env, message) => {
    let thrown: unknown;
    try {
      encodeEnvelope(env);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ProtocastError);
    expect((thrown as ProtocastError).code).toBe(Code.InvalidArgument);
    expect((thrown as ProtocastError).reason).toBe("unencodable_envelope");
    expect((thrown as ProtocastError).message).toMatch(message);
  });

  test.each<[string, Envelope, string]>([
    ["an empty frame", { seq: 0, ackSeq: 0, frame: ping(0) }, "8a 01 00"],
    ["-0 as 0", { seq: -0, ackSeq: 0, frame: ping(-0) }, "8a 01 00"],
    ["2^53-1", { seq: 2 ** 53 - 1, ackSeq: 0, frame: ping(0) }, "08 ff ff ff ff ff ff ff 0f 8a 01 00"],
    ["a negative enum in 10 bytes", { seq: 0, ackSeq: 0, frame: error(-1) }, "3a 0d 08 01 10 ff ff ff ff ff ff ff ff ff 01"],
    ["a frame of 128 bytes with a 2-byte length", { seq: 0, ackSeq: 0, frame: { case: "push", value: { method: "", payload: new Uint8Array(126) } } }, "7a 80 01 12 7e " + "00 ".repeat(126).trim()],
  ])("writes %s", (_name, env, hex) => {
    expect(toHex(encodeEnvelope(env))).toBe(hex);
  });
});
