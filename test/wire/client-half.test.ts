// The client's half of the envelope codec: encodeEnvelopeFromClient encodes what a client sends
// exactly as encodeEnvelope does, and decodeFromServer reads what a server sends exactly as
// decodeIncoming does; a frame of the other side's kinds is refused both ways, and a client that
// receives one closes with 4500 (PROTOCOL.md 3.7).
import { describe, expect } from "vitest";
import { fc, test } from "@fast-check/vitest";
import { CLIENT_CASES } from "../../codegen/print-wire-codec.js";
import { CloseCode, ServerCore, connect, createMemoryTransportPair, type MemoryTransportPair, ProtocastError } from "protocast/node";
import { until } from "../support/wait.js";
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

  test.prop([envelope], { numRuns: runs(600) })("reads a server's frame as decodeIncoming does, and refuses the others with 4500", (env) => {
    const bytes = encodeEnvelope(env);
    if (receives.has(env.frame.case)) {
      expect(decodeFromServer(bytes)).toStrictEqual(decodeIncoming(bytes));
    } else {
      expect(() => decodeFromServer(bytes)).toThrow(expect.objectContaining({ reason: "bad_envelope", closeCode: CloseCode.ProtocolViolation }));
      expect(() => decodeFromServer(bytes)).toThrow(`a ${env.frame.case} frame, which this side never receives`);
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

  // A oneof case replaces an earlier one: a client's frame after a server's is the frame, and
  // refused; a server's after a client's is read.
  test.prop([envelopeWith(fc.constantFrom(...frameCases.filter((k) => receives.has(k))).chain(frameOf)), envelopeWith(fc.constantFrom(...frameCases.filter((k) => !receives.has(k))).chain(frameOf))], {
    numRuns: runs(100),
  })("the last frame decides, as oneof's rule says", (read, skipped) => {
    const clientLast = new Uint8Array([...encodeEnvelope(read), ...encodeEnvelope({ ...skipped, seq: 0, ackSeq: 0 } satisfies Envelope)]);
    expect(() => decodeFromServer(clientLast)).toThrow(`a ${skipped.frame.case} frame, which this side never receives`);
    const serverLast = new Uint8Array([...encodeEnvelope({ ...skipped, seq: 0, ackSeq: 0 } satisfies Envelope), ...encodeEnvelope(read)]);
    expect(decodeFromServer(serverLast)).toStrictEqual(decodeIncoming(serverLast));
  });

  test("a frame of a kind added later is still ignored", () => {
    const later = [0xd2, 0x01, 0x00]; // field 26, empty
    const withAck = new Uint8Array([0x10, 0x03, ...later]); // ack_seq 3, then field 26
    expect(decodeFromServer(withAck)).toStrictEqual({ seq: 0, ackSeq: 3, frame: undefined, newerFrameField: 26 });
    expect(decodeFromServer(withAck)).toStrictEqual(decodeIncoming(withAck));
  });
});

describe("a client that receives a frame only clients send", () => {
  test("closes with 4500 and does not reconnect", async () => {
    const core = new ServerCore({});
    const links: MemoryTransportPair[] = [];
    const conn = connect("memory://", {
      reconnect: { baseMs: 1, capMs: 2 },
      watchNetwork: false,
      transport: () => {
        const link = createMemoryTransportPair();
        links.push(link);
        core.accept(link.server, { id: "alice", scopes: ["*"] });
        return Promise.resolve(link.client);
      },
    });
    const errors: ProtocastError[] = [];
    conn.on("error", (e) => errors.push(e));
    await conn.opened();
    links[0]!.server.send(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "cancel", value: { id: 1 } } }));
    await until(() => conn.state === "closed", "the client to close");
    expect(errors.map((e) => e.closeCode)).toEqual([CloseCode.ProtocolViolation]);
    expect(links).toHaveLength(1);
    await core.close(0);
  });
});
