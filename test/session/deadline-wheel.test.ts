// The deadline wheel a connection watches its requests' deadlines with, driven by a fake clock:
// times are passed in, nothing here waits.
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { DeadlineWheel } from "../../runtime/session/deadline-wheel.js";

describe("DeadlineWheel", () => {
  it("reports an item once its slot has ended: never before its deadline, at most one slot after", () => {
    const w = new DeadlineWheel<string>(10);
    w.add("a", 1_005); // slot ending at 1_010
    expect(w.nextAt).toBe(1_010);
    expect(w.expire(1_004)).toEqual([]);
    expect(w.expire(1_009)).toEqual([]);
    expect(w.expire(1_010)).toEqual(["a"]);
    expect(w.size).toBe(0);
    expect(w.nextAt).toBeUndefined();
    expect(w.expire(5_000)).toEqual([]);
  });

  it("a deadline on a slot boundary is due exactly then", () => {
    const w = new DeadlineWheel<string>(10);
    w.add("a", 1_000);
    expect(w.expire(999)).toEqual([]);
    expect(w.expire(1_000)).toEqual(["a"]);
  });

  it("returns due items earliest slot first, in the order added within a slot, and keeps the rest", () => {
    const w = new DeadlineWheel<string>(10);
    w.add("late", 300);
    w.add("b1", 120);
    w.add("a", 50);
    w.add("b2", 115);
    expect(w.size).toBe(4);
    expect(w.nextAt).toBe(50);
    expect(w.expire(200)).toEqual(["a", "b1", "b2"]); // b1 and b2 share the slot ending at 120
    expect(w.size).toBe(1);
    expect(w.nextAt).toBe(300);
  });

  it("a deleted item is never reported, and the next deadline moves past an emptied slot", () => {
    const w = new DeadlineWheel<string>(10);
    const ta = w.add("a", 10);
    const tb = w.add("b", 10);
    w.add("c", 40);
    expect(w.delete("a", ta)).toBe(true);
    expect(w.delete("a", ta)).toBe(false);
    expect(w.nextAt).toBe(10);
    expect(w.delete("b", tb)).toBe(true);
    expect(w.nextAt).toBe(40);
    expect(w.expire(100)).toEqual(["c"]);
    expect(w.delete("c", 4)).toBe(false); // already reported
  });

  it("takes a deadline earlier than every held one as the next", () => {
    const w = new DeadlineWheel<number>(10);
    w.add(1, 10_000);
    const t2 = w.add(2, 5_000);
    expect(w.nextAt).toBe(5_000);
    w.delete(2, t2);
    expect(w.dueAt(w.add(3, 2_001))).toBe(2_010);
    expect(w.nextAt).toBe(2_010);
  });

  it("refuses a resolution that is not above 0", () => {
    expect(() => new DeadlineWheel(0)).toThrow(RangeError);
    expect(() => new DeadlineWheel(Number.NaN)).toThrow(RangeError);
  });
});

type Step = { kind: "add"; after: number } | { kind: "delete"; pick: number } | { kind: "tick"; dt: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("add" as const), after: fc.integer({ min: 1, max: 500 }) }),
  fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("tick" as const), dt: fc.integer({ min: 0, max: 120 }) }),
);

test.prop([fc.integer({ min: 1, max: 50 }), fc.array(step, { maxLength: 300 })])(
  "every item not deleted is reported exactly once, never early, and no later than its slot's end",
  (resolution, steps) => {
    const w = new DeadlineWheel<number>(resolution);
    const held = new Map<number, { at: number; ticket: number }>();
    const reported = new Set<number>();
    let now = 1_000;
    let next = 0;
    const check = (): void => {
      for (const item of w.expire(now)) {
        const h = held.get(item);
        expect(h, `item ${item} reported twice or after deletion`).toBeDefined();
        expect(h!.at).toBeLessThanOrEqual(now);
        held.delete(item);
        reported.add(item);
      }
      // Whatever is still held is not due yet: its slot ends after now.
      for (const { at } of held.values()) expect(Math.ceil(at / resolution) * resolution).toBeGreaterThan(now);
      const due = [...held.values()].map(({ at }) => Math.ceil(at / resolution) * resolution);
      expect(w.nextAt).toBe(due.length === 0 ? undefined : Math.min(...due));
      expect(w.size).toBe(held.size);
    };
    for (const s of steps) {
      if (s.kind === "add") {
        const item = next++;
        const at = now + s.after;
        held.set(item, { at, ticket: w.add(item, at) });
      } else if (s.kind === "delete") {
        const items = [...held.keys()];
        if (items.length === 0) continue;
        const item = items[s.pick % items.length]!;
        expect(w.delete(item, held.get(item)!.ticket)).toBe(true);
        held.delete(item);
      } else {
        now += s.dt;
        check();
      }
    }
    now += 1_000;
    check();
    expect(held.size).toBe(0);
    expect(reported.size).toBeLessThanOrEqual(next);
  },
);
