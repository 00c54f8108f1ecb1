import { describe, expect, test } from "vitest";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { Code } from "../../runtime/errors/code.js";
import { ProtocastError } from "../../runtime/errors/protocast-error.js";
import { decodeEnvelope } from "../../runtime/wire/decode.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import type { Envelope, Member } from "../../runtime/wire/envelope.js";
import { DEFAULT_DECODE_LIMITS, resolveDecodeLimits, type DecodeLimits } from "../../runtime/wire/limits.js";

function caught(run: () => unknown): ProtocastError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocastError);
    return e as ProtocastError;
  }
  throw new Error("expected a ProtocastError, nothing was thrown");
}

/** A Call envelope whose encoding is exactly `size` bytes long. */
function callOfSize(size: number): Uint8Array {
  const build = (n: number): Uint8Array =>
    encodeEnvelope({
      seq: 1,
      ackSeq: 0,
      frame: { case: "call", value: { id: 1, method: "a.B/C", payload: new Uint8Array(n), timeoutMs: 0, idempotencyKey: "" } },
    });
  let n = size;
  // Each pass corrects the payload by the overshoot; varint prefixes settle within a few.
  for (let i = 0; i < 4; i++) n += size - build(n).length;
  const bytes = build(n);
  expect(bytes.length).toBe(size);
  return bytes;
}

const members = (count: number): Member[] => Array.from({ length: count }, () => ({ clientId: "", principal: "" }));

function presence(joined: number, left = 0): Envelope {
  return { seq: 0, ackSeq: 0, frame: { case: "presence", value: { channel: "room/a", joined: members(joined), left: members(left) } } };
}

function expectTooMany(error: ProtocastError, field: string, max: number): void {
  expect(error.code).toBe(Code.ResourceExhausted);
  expect(error.reason).toBe("too_many_entries");
  expect(error.closeCode).toBe(CloseCode.MessageTooBig);
  expect(error.message).toContain(field);
  expect(error.message).toContain(`maxRepeated ${String(max)}`);
  expect(error.message).toContain(`entry ${String(max + 1)}`);
}

describe("maxEnvelopeBytes", () => {
  test("defaults to 64 KiB", () => {
    expect(DEFAULT_DECODE_LIMITS).toEqual({ maxEnvelopeBytes: 65536, maxRepeated: 10000 });
    expect(decodeEnvelope(callOfSize(65536)).frame.case).toBe("call");
  });

  test("refuses a larger input before parsing it, naming both sizes", () => {
    for (const bytes of [callOfSize(65537), new Uint8Array(70000).fill(0xff)]) {
      const error = caught(() => decodeEnvelope(bytes));
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.reason).toBe("envelope_too_large");
      expect(error.closeCode).toBe(CloseCode.MessageTooBig);
      expect(error.message).toContain(String(bytes.length));
      expect(error.message).toContain("65536");
    }
  });

  test("can be lowered", () => {
    expect(decodeEnvelope(callOfSize(100), { maxEnvelopeBytes: 100 }).seq).toBe(1);
    const error = caught(() => decodeEnvelope(callOfSize(101), { maxEnvelopeBytes: 100 }));
    expect(error.message).toMatch(/envelope of 101 bytes exceeds maxEnvelopeBytes 100/);
  });
});

describe("maxRepeated", () => {
  test("defaults to 10000 entries per repeated field", () => {
    const ok = decodeEnvelope(encodeEnvelope(presence(10000)));
    expect(ok.frame.case === "presence" && ok.frame.value.joined.length).toBe(10000);
    expectTooMany(caught(() => decodeEnvelope(encodeEnvelope(presence(10001)))), "Presence.joined", 10000);
  });

  test("applies to each repeated field separately", () => {
    expect(() => decodeEnvelope(encodeEnvelope(presence(3, 3)), { maxRepeated: 3 })).not.toThrow();
    expectTooMany(caught(() => decodeEnvelope(encodeEnvelope(presence(3, 4)), { maxRepeated: 3 })), "Presence.left", 3);
    const ack: Envelope = {
      seq: 0,
      ackSeq: 0,
      frame: { case: "ack", value: { channels: Array.from({ length: 4 }, () => ({ channel: "c", epoch: "e", offset: 1 })) } },
    };
    expectTooMany(caught(() => decodeEnvelope(encodeEnvelope(ack), { maxRepeated: 3 })), "Ack.channels", 3);
  });

  test("counts entries merged from a repeated frame", () => {
    const once = encodeEnvelope(presence(2));
    const twice = new Uint8Array([...once, ...once]);
    expect(() => decodeEnvelope(once, { maxRepeated: 3 })).not.toThrow();
    expectTooMany(caught(() => decodeEnvelope(twice, { maxRepeated: 3 })), "Presence.joined", 3);
  });

  test("0 refuses any entry", () => {
    expect(() => decodeEnvelope(encodeEnvelope(presence(0)), { maxRepeated: 0 })).not.toThrow();
    expectTooMany(caught(() => decodeEnvelope(encodeEnvelope(presence(1)), { maxRepeated: 0 })), "Presence.joined", 0);
  });
});

describe("limit options", () => {
  test("resolve to frozen, complete limits", () => {
    const limits = resolveDecodeLimits({ maxRepeated: 5 });
    expect(limits).toEqual({ maxEnvelopeBytes: 65536, maxRepeated: 5 });
    expect(Object.isFrozen(limits)).toBe(true);
    expect(resolveDecodeLimits()).toEqual(DEFAULT_DECODE_LIMITS);
    expect(decodeEnvelope(encodeEnvelope(presence(5)), limits).frame.case).toBe("presence");
  });

  test.each<[Partial<DecodeLimits>, string]>([
    [{ maxEnvelopeBytes: 0 }, "maxEnvelopeBytes must be an integer >= 1, got 0"],
    [{ maxEnvelopeBytes: -1 }, "maxEnvelopeBytes must be an integer >= 1, got -1"],
    [{ maxEnvelopeBytes: 1.5 }, "maxEnvelopeBytes must be an integer >= 1, got 1.5"],
    [{ maxEnvelopeBytes: Number.NaN }, "maxEnvelopeBytes must be an integer >= 1, got NaN"],
    [{ maxEnvelopeBytes: Number.POSITIVE_INFINITY }, "maxEnvelopeBytes must be an integer >= 1, got Infinity"],
    [{ maxRepeated: -1 }, "maxRepeated must be an integer >= 0, got -1"],
  ])("refuse %o", (limits, message) => {
    for (const run of [() => resolveDecodeLimits(limits), () => decodeEnvelope(new Uint8Array(0), limits)]) {
      const error = caught(run);
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.reason).toBe("bad_limit");
      expect(error.message).toContain(message);
    }
  });
});
