import { Code } from "../../errors/code.js";
import { ProtocastError } from "../../errors/protocast-error.js";

/** The broker could not be reached in time; nothing was done. */
export function unavailable(what: string, waitedMs: number, cause?: unknown): ProtocastError {
  return new ProtocastError(Code.Unavailable, `${what}: broker unreachable for ${waitedMs} ms`, {
    reason: "broker_unavailable",
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The request may have reached the broker, and taken effect, without its answer coming back. */
export function outcomeUnknown(what: string, cause: unknown): ProtocastError {
  return new ProtocastError(Code.Unavailable, `${what}: the broker connection failed mid-request; it may or may not have taken effect`, {
    reason: "outcome_unknown",
    cause,
  });
}

export function brokerClosed(): ProtocastError {
  return new ProtocastError(Code.Unavailable, "broker closed", { reason: "broker_closed" });
}

/** Rejects with `onLate()` at the deadline; the work itself may still complete later. */
export function withDeadline<T>(work: Promise<T>, deadline: number, onLate: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onLate()), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
