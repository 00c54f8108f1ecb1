// The session-store bookkeeping of a server session, with no store and no socket: frames wait
// until a write that carries them succeeds, acknowledgements never claim more than the store
// holds, failed writes are carried again, and unanswered requests are listed for a successor.
import { describe, expect, it } from "vitest";
import { Sequencer } from "../../runtime/session/sequencer.js";
import { SessionStorage } from "../../runtime/server/session-storage.js";

function setup() {
  const seq = new Sequencer<Uint8Array>();
  const sent: number[] = [];
  const events = { dirty: 0, ackReady: 0 };
  const storage = new SessionStorage({
    seq,
    sendBytes: (b) => sent.push(b[0]!),
    markDirty: () => events.dirty++,
    ackReady: () => events.ackReady++,
  });
  const number = (tag: number): number => {
    const bytes = new Uint8Array([tag]);
    const n = seq.number(bytes, 1);
    storage.hold(n, bytes);
    return n;
  };
  const write = () => storage.takeWrite("s1", () => ({ token: "t", principal: "{}" }), () => "[]");
  return { seq, sent, events, storage, number, write };
}

describe("SessionStorage", () => {
  it("sends a frame only once a write carrying it is stored, in order", () => {
    const { sent, events, storage, number, write } = setup();
    number(10);
    number(11);
    expect(events.dirty).toBe(2);
    expect(sent).toEqual([]);
    const w = write();
    expect(w.create).toEqual({ token: "t", principal: "{}" });
    expect(w.frames.map(([s]) => s)).toEqual([1, 2]);
    expect(w.outSeq).toBe(2);
    number(12); // numbered while the write is in flight: it waits for the next one
    storage.stored(w);
    expect(sent).toEqual([10, 11]);
    const w2 = write();
    expect(w2.create).toBeUndefined();
    expect(w2.frames.map(([s]) => s)).toEqual([3]);
    storage.stored(w2);
    expect(sent).toEqual([10, 11, 12]);
  });

  it("a failed write is carried again by the next one", () => {
    const { storage, number, write } = setup();
    number(1);
    const w = write();
    storage.unwritten(w);
    const again = write();
    expect(again.frames.map(([s]) => s)).toEqual([1]);
    expect(again.create).toBeDefined();
    expect(again.subs).toBe("[]");
  });

  it("acknowledgements claim no more than the store has", () => {
    const { seq, events, storage, write } = setup();
    seq.arrived(1);
    seq.arrived(2);
    expect(storage.ackable()).toBe(0);
    expect(events.dirty).toBe(1);
    const w = write();
    expect(w.inSeq).toBe(2);
    storage.stored(w);
    expect(storage.ackable()).toBe(2);
    expect(events.ackReady).toBe(1);
  });

  it("whenStored resolves once the store caught up with every frame numbered so far", async () => {
    const { storage, number, write } = setup();
    expect(storage.whenStored()).toBeUndefined();
    number(1);
    let done = false;
    void storage.whenStored()!.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    storage.stored(write());
    await Promise.resolve();
    expect(done).toBe(true);
  });

  it("lists requests until they are answered, and hands them over once", () => {
    const { storage, write } = setup();
    storage.requested({ k: "call", id: 1 });
    storage.requested({ k: "pub", id: 2 });
    expect(JSON.parse(write().calls!)).toEqual([{ k: "call", id: 1 }, { k: "pub", id: 2 }]);
    expect(write().calls).toBeUndefined(); // unchanged since
    storage.answered({ case: "reply", value: { id: 1, payload: new Uint8Array() } });
    expect(JSON.parse(write().calls!)).toEqual([{ k: "pub", id: 2 }]);
    expect(storage.takePending()).toEqual([{ k: "pub", id: 2 }]);
    expect(storage.pending()).toEqual([]);
  });

  it("after a handover, frames the store lacks are written before they go out", () => {
    const { seq, sent, events, storage, write } = setup();
    seq.restore(3, 0, [
      [2, new Uint8Array([2]), 1],
      [3, new Uint8Array([3]), 1],
    ]);
    storage.reconcile(2, 0, false);
    expect(events.dirty).toBe(1);
    const w = write();
    expect(w.create).toBeUndefined();
    expect(w.frames.map(([s]) => s)).toEqual([3]);
    storage.stored(w);
    expect(sent).toEqual([3]);
  });
});
