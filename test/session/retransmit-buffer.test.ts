import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { RetransmitBuffer } from "../../runtime/session/retransmit-buffer.js";

describe("RetransmitBuffer", () => {
  // Model: the buffer always holds exactly the frames above the highest ack, in order.
  test.prop([fc.array(fc.oneof(fc.record({ push: fc.integer({ min: 1, max: 100 }) }), fc.record({ ack: fc.nat(300) })), { maxLength: 300 })])(
    "holds exactly the unacknowledged frames, in order, with their byte total",
    (ops) => {
      const buf = new RetransmitBuffer<number>({ maxFrames: 1_000_000, maxBytes: 1 << 30 });
      let seq = 0;
      let acked = 0;
      const model: { seq: number; bytes: number }[] = [];
      for (const op of ops) {
        if ("push" in op) {
          seq++;
          buf.push(seq, seq * 10, op.push);
          model.push({ seq, bytes: op.push });
        } else {
          const a = Math.min(op.ack, seq);
          buf.ack(a);
          if (a > acked) acked = a;
          while (model.length > 0 && model[0]!.seq <= acked) model.shift();
        }
      }
      expect(buf.all().map((e) => e.seq)).toEqual(model.map((m) => m.seq));
      expect(buf.bytes).toBe(model.reduce((n, m) => n + m.bytes, 0));
      expect(buf.after(acked, seq)?.map((e) => e.item)).toEqual(model.map((m) => m.seq * 10));
    },
  );

  it("reports frames it no longer holds as undefined, and nothing to send when up to date", () => {
    const buf = new RetransmitBuffer<string>();
    for (let s = 1; s <= 5; s++) buf.push(s, `f${s}`, 1);
    buf.ack(3);
    expect(buf.after(1, 5)).toBeUndefined();
    expect(buf.after(3, 5)?.map((e) => e.item)).toEqual(["f4", "f5"]);
    expect(buf.after(5, 5)).toEqual([]);
  });

  it("says when it is past its bounds without dropping anything", () => {
    const buf = new RetransmitBuffer<string>({ maxFrames: 2, maxBytes: 100 });
    buf.push(1, "a", 10);
    buf.push(2, "b", 10);
    expect(buf.overflowing).toBe(false);
    buf.push(3, "c", 10);
    expect(buf.overflowing).toBe(true);
    expect(buf.size).toBe(3);
    buf.ack(2);
    expect(buf.overflowing).toBe(false);
  });

  it("refuses a seq that does not follow the last one", () => {
    const buf = new RetransmitBuffer<string>();
    buf.push(1, "a", 1);
    expect(() => buf.push(3, "c", 1)).toThrow(RangeError);
  });
});
