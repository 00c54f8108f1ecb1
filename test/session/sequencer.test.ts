// The protocol core both sides use for numbering, acknowledgements and resume: unit cases and
// a property that two sequencers joined by a connection that drops at random deliver every
// frame once and in order, with the retransmission buffer bounded by what is unacknowledged.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { CloseCode, Code, ProtocastError } from "protocast";
import { ACK_EVERY_FRAMES, Sequencer } from "../../runtime/session/sequencer.js";

function violation(fn: () => unknown): ProtocastError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocastError) return e;
    throw e;
  }
  throw new Error("expected a ProtocastError");
}

describe("Sequencer", () => {
  it("numbers outgoing frames from 1 and holds them until acknowledged", () => {
    const s = new Sequencer<string>();
    expect([s.number("a", 1), s.number("b", 1), s.number("c", 1)]).toEqual([1, 2, 3]);
    s.acknowledged(2);
    expect(s.log.all().map((f) => f.item)).toEqual(["c"]);
    s.acknowledged(1); // lower than seen: ignored
    expect(s.log.size).toBe(1);
  });

  it("an acknowledgement of a frame never sent is a violation (4500)", () => {
    const s = new Sequencer<string>();
    s.number("a", 1);
    const e = violation(() => s.acknowledged(2));
    expect(e.closeCode).toBe(CloseCode.ProtocolViolation);
  });

  it("classifies arrivals: unsequenced, next, duplicate; a gap is a violation", () => {
    const s = new Sequencer<string>();
    expect(s.arrived(0)).toBe("unsequenced");
    expect(s.arrived(1)).toBe("next");
    expect(s.arrived(2)).toBe("next");
    expect(s.arrived(2)).toBe("duplicate");
    expect(s.arrived(1)).toBe("duplicate");
    const e = violation(() => s.arrived(4));
    expect(e.code).toBe(Code.DataLoss);
    expect(e.closeCode).toBe(CloseCode.ProtocolViolation);
    expect(s.inSeq).toBe(2);
  });

  it("owes an acknowledgement until one is sent, and asks for it at once after 64 frames", () => {
    const s = new Sequencer<string>();
    for (let i = 1; i < ACK_EVERY_FRAMES; i++) s.arrived(i);
    expect(s.ackOwed).toBe(true);
    expect(s.ackUrgent).toBe(false);
    s.arrived(ACK_EVERY_FRAMES);
    expect(s.ackUrgent).toBe(true);
    expect(s.ackSent()).toBe(ACK_EVERY_FRAMES);
    expect(s.ackOwed).toBe(false);
  });

  it("resumes from the peer's last seq: releases what it has, returns what it lacks", () => {
    const s = new Sequencer<string>();
    for (const x of ["a", "b", "c", "d"]) s.number(x, 1);
    s.acknowledged(1);
    expect(s.canResumeFrom(2)).toBe(true);
    expect(s.resumeFrom(2)?.map((f) => [f.seq, f.item])).toEqual([
      [3, "c"],
      [4, "d"],
    ]);
    expect(s.log.size).toBe(2);
    expect(s.resumeFrom(4)).toEqual([]);
    expect(s.canResumeFrom(5)).toBe(false); // beyond what was sent
    expect(s.resumeFrom(5)).toBeUndefined();
  });

  it("cannot resume when frames the peer lacks are gone", () => {
    const s = new Sequencer<string>({ maxFrames: 10, maxBytes: 100 });
    for (const x of ["a", "b", "c"]) s.number(x, 1);
    s.acknowledged(2);
    expect(s.canResumeFrom(1)).toBe(false); // 2 was released, the peer claims it lacks it
    expect(s.resumeFrom(1)).toBeUndefined();
  });

  it("restores counters and frames from a snapshot, and resets for a new session", () => {
    const s = new Sequencer<string>();
    s.restore(7, 4, [
      [6, "f", 1],
      [7, "g", 1],
    ]);
    expect([s.outSeq, s.inSeq, s.ackedToPeer]).toEqual([7, 4, 4]);
    expect(s.number("h", 1)).toBe(8);
    expect(s.arrived(5)).toBe("next");
    expect(s.resumeFrom(6)?.map((f) => f.item)).toEqual(["g", "h"]);
    s.reset();
    expect([s.outSeq, s.inSeq, s.ackedToPeer, s.log.size]).toEqual([0, 0, 0, 0]);
  });
});

/** One step of the property: a side sends, the link delivers or drops, acks flow, or the link breaks. */
type Step = { readonly kind: "send"; readonly from: 0 | 1 } | { readonly kind: "deliver"; readonly to: 0 | 1 } | { readonly kind: "drop"; readonly to: 0 | 1 } | { readonly kind: "ack"; readonly from: 0 | 1 } | { readonly kind: "break" };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("send" as const), from: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("deliver" as const), to: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), to: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("ack" as const), from: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "break" as const }) },
);

describe("Sequencer property", () => {
  test.prop([fc.array(step, { maxLength: 300 })], { numRuns: 200 })(
    "over a link that loses a frame only by breaking, both sides get every frame once and in order",
    (steps) => {
      // A WebSocket is ordered and loses frames only when it breaks: a dropped frame ends the
      // connection, and what was in flight is lost with it. Each side then resumes the other.
      const sides = [new Sequencer<number>(), new Sequencer<number>()] as const;
      const wires: { seq: number; ack: number; payload: number }[][] = [[], []]; // wires[i]: frames to side i
      const got: number[][] = [[], []];
      const sent = [0, 0];
      const resume = (): void => {
        wires[0] = [];
        wires[1] = [];
        for (const i of [0, 1] as const) {
          const me = sides[i];
          const peer = sides[1 - i]!;
          // The peer tells me its inSeq (Resume.last_seq / Resumed.last_seq); I resend the rest.
          const frames = me.resumeFrom(peer.inSeq);
          expect(frames).toBeDefined();
          for (const f of frames!) wires[1 - i]!.push({ seq: f.seq, ack: me.ackSent(), payload: f.item });
        }
      };
      for (const s of steps) {
        if (s.kind === "send") {
          const me = sides[s.from];
          const payload = ++sent[s.from]!;
          const seq = me.number(payload, 1);
          wires[1 - s.from]!.push({ seq, ack: me.ackSent(), payload });
        } else if (s.kind === "deliver") {
          const f = wires[s.to]!.shift();
          if (f === undefined) continue;
          const me = sides[s.to];
          me.acknowledged(f.ack);
          if (me.arrived(f.seq) === "next") got[s.to]!.push(f.payload);
        } else if (s.kind === "ack") {
          const me = sides[s.from];
          if (me.ackOwed) wires[1 - s.from]!.push({ seq: 0, ack: me.ackSent(), payload: 0 });
        } else {
          resume();
        }
        // Nothing unacknowledged is ever released.
        for (const i of [0, 1] as const) expect(sides[i].log.size).toBe(sides[i].outSeq - sides[i].log.acked);
      }
      // Let the link settle: a last resume, then deliver everything.
      resume();
      for (const i of [0, 1] as const) {
        for (const f of wires[i]!) {
          sides[i].acknowledged(f.ack);
          if (sides[i].arrived(f.seq) === "next") got[i]!.push(f.payload);
        }
      }
      for (const i of [0, 1] as const) {
        const expected = Array.from({ length: sent[1 - i]! }, (_, k) => k + 1);
        expect(got[i]).toEqual(expected); // no loss, no duplicate, in order
      }
    },
  );
});
