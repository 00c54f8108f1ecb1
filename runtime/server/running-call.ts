import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Outcome } from "../session/idempotency-window.js";
import type { CallContext, Principal, Publisher } from "./context.js";
import type { TraceSpan } from "../session/tracing.js";
import type { Metadata } from "../wire/metadata.js";

/** Hears the single outcome of a running call. */
export interface CallSettler {
  finished(call: RunningCall, outcome: Outcome): void;
}

/**
 * One call while it runs: its deadline, its abort signal (made only if the handler asks for
 * it: most never do) and its single outcome. Whatever comes first, the handler's answer, the
 * deadline, a cancel or the end of the session, settles it; later ones are ignored. It has no
 * timer: the server's one deadline sweep (session/deadline-sweep.ts) expires it.
 */
export class RunningCall {
  private controller: AbortController | undefined;
  private settled = false;
  /** The call's SERVER span, when the server traces; ended with the outcome. */
  span: TraceSpan | undefined = undefined;

  constructor(
    readonly id: number,
    readonly method: string,
    /** When the call arrived and when it must be answered, as the server's clock reads. */
    readonly started: number,
    readonly deadline: number,
    private readonly timeoutMs: number,
    /** Exactly-once calls outlive their session: their outcome is recorded for retries. */
    readonly dedupe: boolean,
    private readonly settler: CallSettler,
  ) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** The deadline passed: aborted with DEADLINE_EXCEEDED. */
  expire(): void {
    this.abort(new ProtocastError(Code.DeadlineExceeded, `${this.method} did not finish within ${this.timeoutMs} ms`));
  }

  /** Aborts the handler's signal and answers the call with the reason. */
  abort(reason: ProtocastError): void {
    if (this.settled) return;
    this.controller?.abort(reason);
    this.settle({ kind: "error", code: reason.code, message: reason.rawMessage, reason: reason.reason });
  }

  settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.settler.finished(this, outcome);
  }
}

/**
 * The context a handler receives: plain fields, the signal made on first use. One small
 * object per call; publish and push are the server's, shared by every call.
 */
export class HandlerContext implements CallContext {
  readonly method: string;
  readonly deadline: number;
  readonly publish: Publisher["publish"];
  readonly push: Publisher["push"];

  constructor(
    readonly principal: Principal,
    readonly sessionId: string,
    private readonly call: RunningCall,
    readonly idempotencyKey: string,
    publisher: Publisher,
    /** The call's metadata, read-only (NO_METADATA when it has none). */
    readonly metadata: Metadata,
    /** Instead of the server's shared publish: one that continues the call's trace. */
    publish?: Publisher["publish"],
  ) {
    this.method = call.method;
    this.deadline = call.deadline;
    this.publish = publish ?? publisher.publish;
    this.push = publisher.push;
  }

  get signal(): AbortSignal {
    return this.call.signal;
  }
}
