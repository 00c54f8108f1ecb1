// The shared deadline timer, on a fake clock: one timer whatever the number of deadlines,
// armed for the earliest, re-armed only when an earlier one comes, gone when nothing is held.
import { describe, expect, it } from "vitest";
import { DeadlineSweep, type DeadlineHolder, type SweepTimers } from "../../runtime/session/deadline-sweep.js";

/** A clock and timers that move only when the test says so. */
function fakeTimers() {
  let now = 1_000;
  let nextId = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: SweepTimers = {
    now: () => now,
    schedule: (fn, ms) => {
      const id = nextId++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    cancel: (h) => void pending.delete(h as number),
  };
  const advance = (ms: number): void => {
    const end = now + ms;
    for (;;) {
      const due = [...pending].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      pending.delete(due[0]);
      now = due[1].at;
      due[1].fn();
    }
    now = end;
  };
  return { timers, advance, pending, now: () => now, scheduled: () => nextId - 1 };
}

/** A holder of deadlines that records when each expired. */
class Holder implements DeadlineHolder {
  readonly deadlines = new Set<number>();
  readonly expired: [number, number][] = [];
  expire(now: number): number {
    let next = Infinity;
    for (const d of this.deadlines) {
      if (d <= now) {
        this.deadlines.delete(d);
        this.expired.push([d, now]);
      } else if (d < next) next = d;
    }
    return next;
  }
}

describe("DeadlineSweep", () => {
  it("expires each deadline when it falls due, with one timer armed at a time", () => {
    const t = fakeTimers();
    const sweep = new DeadlineSweep(t.timers);
    const a = new Holder();
    const b = new Holder();
    for (const [h, at] of [[a, 1_300], [b, 1_100], [a, 1_200]] as const) {
      h.deadlines.add(at);
      sweep.watch(h, at);
    }
    expect(t.pending.size).toBe(1);
    t.advance(150);
    expect(b.expired).toEqual([[1_100, 1_100]]);
    expect(a.expired).toEqual([]);
    t.advance(200);
    expect(a.expired).toEqual([
      [1_200, 1_200],
      [1_300, 1_300],
    ]);
    expect(t.pending.size).toBe(0);
    expect(sweep.size).toBe(0);
  });

  it("a later deadline does not touch the armed timer; an earlier one re-arms it", () => {
    const t = fakeTimers();
    const sweep = new DeadlineSweep(t.timers);
    const h = new Holder();
    h.deadlines.add(1_500);
    sweep.watch(h, 1_500);
    for (let i = 0; i < 100; i++) {
      h.deadlines.add(1_600 + i);
      sweep.watch(h, 1_600 + i);
    }
    expect(t.scheduled()).toBe(1);
    h.deadlines.add(1_050);
    sweep.watch(h, 1_050);
    expect(t.scheduled()).toBe(2);
    expect(t.pending.size).toBe(1);
    t.advance(60);
    expect(h.expired).toEqual([[1_050, 1_050]]);
  });

  it("deadlines that went away before they fell due expire nothing, and the holder is dropped", () => {
    const t = fakeTimers();
    const sweep = new DeadlineSweep(t.timers);
    const h = new Holder();
    h.deadlines.add(1_100);
    sweep.watch(h, 1_100);
    h.deadlines.clear(); // the call finished first
    t.advance(500);
    expect(h.expired).toEqual([]);
    expect(sweep.size).toBe(0);
    expect(t.pending.size).toBe(0);
  });

  it("close() cancels the timer and ignores later deadlines", () => {
    const t = fakeTimers();
    const sweep = new DeadlineSweep(t.timers);
    const h = new Holder();
    h.deadlines.add(1_100);
    sweep.watch(h, 1_100);
    sweep.close();
    expect(t.pending.size).toBe(0);
    sweep.watch(h, 1_200);
    t.advance(1_000);
    expect(h.expired).toEqual([]);
  });
});
