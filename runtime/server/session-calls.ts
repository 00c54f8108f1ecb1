import { Code, codeName } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Outcome } from "../session/idempotency-window.js";
import type { Call, Frame } from "../wire/envelope.js";
import { LEASE_MARGIN_MS, authorized, checkKey, idempotencyScope, isThenable, replyOutcome, toErrorOutcome } from "./call-outcome.js";
import type { CallContext, Principal } from "./context.js";
import { bump } from "./counters.js";
import { RunningCall } from "./running-call.js";
import { hasScope } from "./scopes.js";
import type { SessionHost } from "./session-host.js";

/** What the calls of a session need of the server. */
export type CallHost = Pick<
  SessionHost<unknown>,
  "limits" | "counters" | "now" | "observer" | "authorize" | "lookup" | "handlerFor" | "dedupe" | "publish" | "push"
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
 */
export class SessionCalls {
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
    for (const c of this.inflight.values()) if (!c.dedupe) c.abort(new ProtocastError(Code.Canceled, "session ended"));
    this.inflight.clear();
  }

  onCall(call: Call): void {
    const { id } = call;
    const host = this.host;
    const owner = this.owner;
    if (this.inflight.has(id)) throw new ProtocastError(Code.InvalidArgument, `call id ${id} is already in flight`, { closeCode: CloseCode.ProtocolViolation });
    const def = host.lookup(call.method);
    const handler = host.handlerFor(call.method);
    if (def === undefined || def.kind !== "call" || handler === undefined) {
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
    const running = new RunningCall(call.method, timeoutMs, dedupe, (o) => {
      if (this.inflight.get(id) === running) this.inflight.delete(id);
      host.observer?.callFinished?.(call.method, o.kind === "reply" ? "ok" : codeName(o.code as Code), host.now() - started);
      if (o.kind === "reply") owner.sendSequenced({ case: "reply", value: { id, payload: o.payload } });
      else owner.sendSequenced({ case: "error", value: { id, code: o.code, message: o.message, reason: o.reason, retryAfterMs: 0 } });
    });
    this.inflight.set(id, running);
    const ctx = this.callContext(running, call.method, call.idempotencyKey, started + timeoutMs);
    const encode = (result: unknown): Uint8Array => def.outputCodec.encode(result as never);
    if (!dedupe && host.authorize === undefined) {
      // The common case, without a promise of its own: a handler that answers synchronously
      // is replied to in the same turn.
      try {
        const result = handler(request, ctx);
        if (isThenable(result)) {
          result.then(
            (r) => running.settle(replyOutcome(encode, r)),
            (e: unknown) => running.settle(toErrorOutcome(e)),
          );
        } else running.settle(replyOutcome(encode, result));
      } catch (e) {
        running.settle(toErrorOutcome(e));
      }
      return;
    }
    const run = (): Promise<Uint8Array> => Promise.resolve().then(() => handler(request, ctx)).then(encode);
    void authorized(host.authorize, { principal: owner.principal, action: "call", method: call.method, channel: "", params: undefined })
      .then((ok): Promise<Outcome> => {
        if (!ok) return Promise.resolve(toErrorOutcome(new ProtocastError(Code.PermissionDenied, `not allowed to call ${call.method}`)));
        // The handler's own outcome is what the idempotency record keeps, even if this request
        // gave up first (deadline): a retry then gets it instead of a second run.
        if (dedupe) {
          const scope = idempotencyScope(owner.principal, owner.id);
          return host.dedupe(scope, call.idempotencyKey, call.method, call.payload, run, running.signal, timeoutMs + LEASE_MARGIN_MS);
        }
        return run().then(
          (payload): Outcome => ({ kind: "reply", payload }),
          (e: unknown): Outcome => toErrorOutcome(e),
        );
      })
      .then(
        (o) => running.settle(o),
        (e: unknown) => running.settle(toErrorOutcome(e)),
      );
  }

  private callContext(running: RunningCall, method: string, idempotencyKey: string, deadline: number): CallContext {
    return {
      principal: this.owner.principal,
      sessionId: this.owner.id,
      method,
      get signal() {
        return running.signal;
      },
      deadline,
      idempotencyKey,
      publish: this.publishFn,
      push: this.pushFn,
    };
  }

  private readonly publishFn: CallContext["publish"] = (ch, params, msg) => this.host.publish(ch, params, msg);
  private readonly pushFn: CallContext["push"] = (ev, principalId, msg) => this.host.push(ev, principalId, msg);
}
