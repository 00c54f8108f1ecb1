// The calls of a server session with no socket and no real timer: a fake clock and timers
// drive the shared deadline sweep, and the frames the session would send are collected.
import { describe, expect, it } from "vitest";
import { Code } from "protocast";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import { DeadlineSweep, type SweepTimers } from "../../runtime/session/deadline-sweep.js";
import { createCounters } from "../../runtime/server/counters.js";
import { resolveLimits } from "../../runtime/server/options.js";
import { SessionCalls, type CallHost } from "../../runtime/server/session-calls.js";
import type { CallHandler } from "../../runtime/server/session-host.js";
import type { AuthorizeRequest, CallContext } from "../../runtime/server/context.js";
import type { Frame } from "../../runtime/wire/envelope.js";

const ECHO = "acme.bench.v1.BenchService/Echo";
const echoDef = BenchService.byPath.get(ECHO)!;
if (echoDef.kind !== "call") throw new Error("Echo is a call");
const encodeRequest = (payload: Uint8Array) => echoDef.inputCodec.encode({ payload } as never);
const decodeReply = (bytes: Uint8Array) => echoDef.outputCodec.decode(bytes) as unknown as { payload: Uint8Array };

function setup(handler: CallHandler, authorize?: (r: AuthorizeRequest) => boolean | Promise<boolean>) {
  let now = 10_000;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let scheduled = 0;
  const sweepTimers: SweepTimers = {
    now: () => now,
    schedule: (fn, ms) => {
      timers.set(++scheduled, { at: now + ms, fn });
      return scheduled;
    },
    cancel: (h) => void timers.delete(h as number),
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, t] of [...timers]) {
      if (t.at > now) continue;
      timers.delete(id);
      t.fn();
    }
  };
  const host: CallHost = {
    limits: resolveLimits({}),
    counters: createCounters(),
    now: () => now,
    observer: undefined,
    authorize,
    lookup: (p) => BenchService.byPath.get(p),
    handlerFor: (p) => (p === ECHO ? handler : undefined),
    dedupe: () => Promise.reject(new Error("not exactly-once")),
    callDeadlines: new DeadlineSweep(sweepTimers),
    publisher: { publish: () => Promise.reject(new Error("unused")), push: () => 0 },
    publish: () => Promise.reject(new Error("unused")),
    tracing: undefined,
  };
  const sent: Frame[] = [];
  const calls = new SessionCalls(host, {
    id: "s1",
    principal: { id: "alice", scopes: ["*"] },
    sendSequenced: (f) => sent.push(f),
    sendError: (id, e) => sent.push({ case: "error", value: { id, code: (e as { code: number }).code, message: "", reason: "", retryAfterMs: 0 } }),
  });
  const call = (id: number, timeoutMs = 0) =>
    calls.onCall({ id, method: ECHO, payload: encodeRequest(new Uint8Array([id])), idempotencyKey: "", timeoutMs } as never);
  return { calls, call, sent, advance, timersArmed: () => timers.size, scheduled: () => scheduled };
}

describe("SessionCalls", () => {
  it("answers a synchronous handler before onCall returns, with one timer for all deadlines", () => {
    const t = setup((req) => ({ payload: (req as { payload: Uint8Array }).payload }));
    for (let id = 1; id <= 100; id++) t.call(id);
    expect(t.sent).toHaveLength(100);
    expect(t.sent.map((f) => (f.case === "reply" ? decodeReply(f.value.payload).payload[0] : -1))).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(t.calls.running).toBe(0);
    expect(t.scheduled()).toBe(1);
    // The sweep finds nothing left at the deadline and disarms.
    t.advance(60_000);
    expect(t.timersArmed()).toBe(0);
  });

  it("a handler's resolved promise is answered in the next microtask", async () => {
    const t = setup((req) => Promise.resolve({ payload: (req as { payload: Uint8Array }).payload }));
    t.call(7);
    expect(t.sent).toEqual([]);
    await Promise.resolve();
    expect(t.sent.map((f) => f.case)).toEqual(["reply"]);
  });

  it("a call past its deadline gets DEADLINE_EXCEEDED and its signal aborts", () => {
    const contexts: CallContext[] = [];
    const t = setup((_req, ctx) => {
      contexts.push(ctx);
      return new Promise(() => undefined);
    });
    t.call(1, 200);
    t.call(2, 500);
    const signal = contexts[0]!.signal;
    expect(contexts[0]!.deadline).toBe(10_200);
    t.advance(199);
    expect(t.sent).toEqual([]);
    t.advance(1);
    expect(t.sent).toEqual([{ case: "error", value: expect.objectContaining({ id: 1, code: Code.DeadlineExceeded }) }]);
    expect(signal.aborted).toBe(true);
    expect(t.calls.running).toBe(1);
    t.advance(300);
    expect(t.sent.map((f) => (f.value as { id: number }).id)).toEqual([1, 2]);
    expect(t.timersArmed()).toBe(0);
  });

  it("a synchronous authorize hook decides in the same turn", () => {
    const t = setup((req) => ({ payload: (req as { payload: Uint8Array }).payload }), (r) => r.principal.id !== "alice");
    t.call(1);
    expect(t.sent).toEqual([{ case: "error", value: expect.objectContaining({ id: 1, code: Code.PermissionDenied }) }]);
    const allowed = setup((req) => ({ payload: (req as { payload: Uint8Array }).payload }), () => true);
    allowed.call(2);
    expect(allowed.sent.map((f) => f.case)).toEqual(["reply"]);
  });

  it("cancel and end answer running calls CANCELED", () => {
    const t = setup(() => new Promise(() => undefined));
    t.call(1);
    t.call(2);
    t.calls.cancel(1);
    expect(t.sent).toEqual([{ case: "error", value: expect.objectContaining({ id: 1, code: Code.Canceled }) }]);
    t.calls.end();
    expect(t.sent.map((f) => (f.value as { id: number; code: number }).code)).toEqual([Code.Canceled, Code.Canceled]);
    expect(t.calls.running).toBe(0);
  });

  it("a second call with an id still running is a protocol violation", () => {
    const t = setup(() => new Promise(() => undefined));
    t.call(1);
    expect(() => t.call(1)).toThrow(/already in flight/);
  });
});
