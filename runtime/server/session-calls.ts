import { Code, codeName } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Outcome } from "../session/idempotency-window.js";
import type { Call, Frame } from "../wire/envelope.js";
import { LEASE_MARGIN_MS, authorized, checkKey, idempotencyScope, isThenable, replyOutcome, toErrorOutcome } from "./call-outcome.js";
import type { Principal } from "./context.js";
import { bump } from "./counters.js";
import { HandlerContext, RunningCall, type CallSettler } from "./running-call.js";
import { hasScope } from "./scopes.js";
import type { CallHandler, SessionHost } from "./session-host.js";
import type { DeadlineHolder } from "../session/deadline-sweep.js";
import type { MessageCodec } from "../codec/message-codec.js";
import type { DescMessage } from "@bufbuild/protobuf";
import { metadataView } from "../wire/metadata.js";
import { endCallSpan, startCallSpan } from "./call-tracing.js";

/** What the calls of a session need of the server. */
export type CallHost = Pick<
  SessionHost<unknown>,
  "limits" | "counters" | "now" | "observer" | "authorize" | "lookup" | "handlerFor" | "dedupe" | "callDeadlines" | "publisher" | "publish" | "tracing"
>;

/** What the calls of a session need of the session. */
export interface CallOwner {
  readonly id: string;
  readonly principal: Principal;
  /** Sends a frame addressed to the session: numbered, kept until acknowledged. */
  sendSequenced(frame: Frame): void;
  /** Answers request `id` with the error `e` stands for. */
  sendError(id: number, e: unknown, sequenced: boolean): void;
}

/**
 * The calls of one session: checks, decoding, the handler's run, its deadline and its single
 * answer. Made when the session receives its first call.
 *
 * The common path (no authorize hook, not exactly-once) takes no promise of its own: a handler
 * that answers synchronously is replied to in the same turn, one that returns a promise costs
 * that promise's then(). Deadlines are watched by the server's one sweep, not a timer per call.
 */
export class SessionCalls implements CallSettler, DeadlineHolder {
  /** Running calls by id. */
  private readonly inflight = new Map<number, RunningCall>();

  constructor(
    private readonly host: CallHost,
    private readonly owner: CallOwner,
  ) {}

  /** Calls still running. */
  get running(): number {
    return this.inflight.size;
  }

  /** The client gave up on call `id`: its signal aborts and it is answered CANCELED. */
  cancel(id: number): void {
    this.inflight.get(id)?.abort(new ProtocastError(Code.Canceled, "canceled by the client"));
  }

  /** The session ended: its calls are aborted, except exactly-once ones (see below). */
  end(): void {
    // An exactly-once call keeps running to its deadline: its outcome is recorded under its
    // idempotency key, so the client's retry on a new session gets it instead of a second run.
    // It stays listed so that the sweep still expires it; its answer goes nowhere.
    for (const c of this.inflight.values()) if (!c.dedupe) c.abort(new ProtocastError(Code.Canceled, "session ended"));
  }

  /** Expires the calls past their deadline (DeadlineHolder); the earliest deadline left. */
  expire(now: number): number {
    let next = Infinity;
    for (const c of this.inflight.values()) {
      if (c.deadline <= now) c.expire();
      else if (c.deadline < next) next = c.deadline;
    }
    return next;
  }

  /** A call's single outcome: it leaves the list and its answer goes out. */
  finished(call: RunningCall, o: Outcome): void {
    const id = call.id;
    if (call.span !== undefined) endCallSpan(call.span, o);
    if (this.inflight.get(id) === call) this.inflight.delete(id);
    const host = this.host;
    host.observer?.callFinished?.(call.method, o.kind === "reply" ? "ok" : codeName(o.code as Code), host.now() - call.started);
    if (o.kind === "reply") this.owner.sendSequenced({ case: "reply", value: { id, payload: o.payload } });
    else this.owner.sendSequenced({ case: "error", value: { id, code: o.code, message: o.message, reason: o.reason, retryAfterMs: 0 } });
  }

  onCall(call: Call): void {
    const { id } = call;
    const host = this.host;
    const owner = this.owner;
    if (this.inflight.has(id)) throw new ProtocastError(Code.InvalidArgument, `call id ${id} is already in flight`, { closeCode: CloseCode.ProtocolViolation });
    const def = host.lookup(call.method);
    const found = host.handlerFor(call.method);
    if (def === undefined || def.kind !== "call" || found === undefined) {
      owner.sendError(id, new ProtocastError(Code.Unimplemented, `method ${call.method} is not implemented`, { reason: "unknown_method" }), true);
      return;
    }
    if (!hasScope(owner.principal, def.rules.scope)) {
      owner.sendError(id, new ProtocastError(Code.PermissionDenied, `${call.method} needs scope "${def.rules.scope}"`, { reason: "missing_scope" }), true);
      return;
    }
    const limit = host.limits.maxInflightCalls;
    if (this.inflight.size >= limit) {
      bump(host.counters.limitHits, "max_inflight_calls");
      owner.sendError(id, new ProtocastError(Code.ResourceExhausted, `more than ${limit} calls in flight`, { reason: "max_inflight_calls" }), true);
      return;
    }
    let request: unknown;
    try {
      request = def.inputCodec.decode(call.payload);
    } catch (e) {
      owner.sendError(id, new ProtocastError(Code.InvalidArgument, `request of ${call.method} does not decode: ${String(e)}`, { reason: "bad_payload" }), true);
      return;
    }
    const dedupe = def.rules.delivery === "exactly-once";
    const keyProblem = checkKey(call.idempotencyKey, dedupe);
    if (keyProblem !== undefined) {
      owner.sendError(id, keyProblem, true);
      return;
    }
    const timeoutMs = Math.min(call.timeoutMs > 0 ? call.timeoutMs : def.rules.timeoutMs, host.limits.maxCallTimeoutMs);
    const started = host.now();
    const running = new RunningCall(id, call.method, started, started + timeoutMs, timeoutMs, dedupe, this);
    this.inflight.set(id, running);
    host.callDeadlines.watch(this, running.deadline);
    const metadata = metadataView(call.metadata);
    const tracing = host.tracing;
    let ctx: HandlerContext;
    let handler: CallHandler = found;
    if (tracing === undefined) ctx = new HandlerContext(owner.principal, owner.id, running, call.idempotencyKey, host.publisher, metadata);
    else {
      // The handler runs inside the call's span, and its publishes continue the call's trace.
      const span = (running.span = startCallSpan(tracing, call.method, metadata));
      handler = (req, c) => tracing.run(span, () => found(req, c));
      ctx = new HandlerContext(owner.principal, owner.id, running, call.idempotencyKey, host.publisher, metadata, (ch, params, msg, o) => host.publish(ch, params, msg, o, { span }));
    }
    const codec = def.outputCodec;
    const hook = host.authorize;
    if (!dedupe) {
      if (hook === undefined) {
        runHandler(handler, request, ctx, codec, running);
        return;
      }
      // The authorize hook is asked first; one that answers synchronously costs no promise.
      let verdict: boolean | Promise<boolean>;
      try {
        verdict = hook({ principal: owner.principal, action: "call", method: call.method, channel: "", params: undefined, metadata });
      } catch (e) {
        running.settle(toErrorOutcome(e));
        return;
      }
      if (!isThenable(verdict)) {
        if (verdict) runHandler(handler, request, ctx, codec, running);
        else running.settle(denied(call.method));
        return;
      }
      verdict.then(
        (ok) => (ok ? runHandler(handler, request, ctx, codec, running) : running.settle(denied(call.method))),
        (e: unknown) => running.settle(toErrorOutcome(e)),
      );
      return;
    }
    const run = (): Promise<Uint8Array> => Promise.resolve().then(() => handler(request, ctx)).then((r) => codec.encode(r as never));
    void authorized(hook, { principal: owner.principal, action: "call", method: call.method, channel: "", params: undefined, metadata })
      .then((ok): Promise<Outcome> => {
        if (!ok) return Promise.resolve(denied(call.method));
        // The handler's own outcome is what the idempotency record keeps, even if this request
        // gave up first (deadline): a retry then gets it instead of a second run.
        const scope = idempotencyScope(owner.principal, owner.id);
        return host.dedupe(scope, call.idempotencyKey, call.method, call.payload, run, running.signal, timeoutMs + LEASE_MARGIN_MS);
      })
      .then(
        (o) => running.settle(o),
        (e: unknown) => running.settle(toErrorOutcome(e)),
      );
  }
}

function denied(method: string): Outcome {
  return toErrorOutcome(new ProtocastError(Code.PermissionDenied, `not allowed to call ${method}`));
}

/** Runs a handler and settles the call with what it returns, synchronously when it can. */
function runHandler(handler: CallHandler, request: unknown, ctx: HandlerContext, codec: MessageCodec<DescMessage>, running: RunningCall): void {
  let result: unknown;
  try {
    result = handler(request, ctx);
  } catch (e) {
    running.settle(toErrorOutcome(e));
    return;
  }
  if (!isThenable(result)) {
    running.settle(replyOutcome(codec, result));
    return;
  }
  result.then(
    (r) => running.settle(replyOutcome(codec, r)),
    (e: unknown) => running.settle(toErrorOutcome(e)),
  );
}
