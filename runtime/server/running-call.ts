import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Outcome } from "../session/idempotency-window.js";

/**
 * One call while it runs: its deadline, its abort signal (made only if the handler asks for
 * it: most never do) and its single outcome. Whatever comes first, the handler's answer, the
 * deadline, a cancel or the end of the session, settles it; later ones are ignored.
 */
export class RunningCall {
  private controller: AbortController | undefined;
  private readonly timer: ReturnType<typeof setTimeout>;
  private settled = false;

  constructor(
    readonly method: string,
    timeoutMs: number,
    /** Exactly-once calls outlive their session: their outcome is recorded for retries. */
    readonly dedupe: boolean,
    private readonly onSettled: (outcome: Outcome) => void,
  ) {
    this.timer = setTimeout(() => this.abort(new ProtocastError(Code.DeadlineExceeded, `${method} did not finish within ${timeoutMs} ms`)), timeoutMs);
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
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
    clearTimeout(this.timer);
    this.onSettled(outcome);
  }
}
