import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Outcome } from "../session/idempotency-window.js";
import type { AuthorizeRequest, Principal } from "./context.js";

/**
 * Added to a request's deadline to make its idempotency lease: past it, another node may take
 * the key over (the first one's node is presumed dead).
 */
export const LEASE_MARGIN_MS = 5_000;

/** Longest idempotency key accepted, in bytes. */
export const MAX_IDEMPOTENCY_KEY_BYTES = 128;

/** Error codes after which an idempotency record is dropped, so that a retry runs again. */
const TRANSIENT = new Set([Code.Canceled, Code.DeadlineExceeded, Code.Unavailable, Code.Aborted, Code.ResourceExhausted]);

const ALLOWED = Promise.resolve(true);

/**
 * What a client is told about a failure. A ProtocastError goes as it is; anything else is a
 * bug whose text may hold internal data, so the client hears only UNKNOWN.
 */
export function toErrorOutcome(e: unknown): Outcome {
  if (!(e instanceof ProtocastError) && !(e instanceof Error && e.name === "AbortError")) {
    return { kind: "error", code: Code.Unknown, message: "the handler failed", reason: "" };
  }
  const err = ProtocastError.from(e, Code.Unknown);
  return { kind: "error", code: err.code, message: err.rawMessage, reason: err.reason };
}

/** Whether an outcome is one a retry may change, so that its idempotency record is dropped. */
export function isTransient(o: Outcome): boolean {
  return o.kind === "error" && TRANSIENT.has(o.code);
}

/** The reply outcome of a handler's result, or the error its encoding threw. */
export function replyOutcome(codec: { encode(message: never): Uint8Array }, result: unknown): Outcome {
  try {
    return { kind: "reply", payload: codec.encode(result as never) };
  } catch (e) {
    return toErrorOutcome(e);
  }
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** Why an idempotency key is not acceptable, or undefined when it is. */
export function checkKey(key: string, required: boolean): ProtocastError | undefined {
  if (key === "" && !required) return undefined;
  if (required && key === "") {
    return new ProtocastError(Code.InvalidArgument, "this method is exactly-once and needs an idempotency key", { reason: "idempotency_key_required" });
  }
  if (key.length > MAX_IDEMPOTENCY_KEY_BYTES || new TextEncoder().encode(key).length > MAX_IDEMPOTENCY_KEY_BYTES) {
    return new ProtocastError(Code.InvalidArgument, `idempotency key longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes`, { reason: "idempotency_key_too_long" });
  }
  return undefined;
}

/**
 * Whose idempotency records a request of a session may match (PROTOCOL.md 5.3, rule 1): the
 * principal's, or for an anonymous principal the session's, so that anonymous connections
 * sharing an id never see each other's outcomes. The NUL separator keeps such a scope apart
 * from ordinary principal ids; to collide, a named id would have to embed a NUL and the
 * session's random id.
 */
export function idempotencyScope(principal: Principal, sessionId: string): string {
  return principal.anonymous === true ? `${principal.id}\u0000${sessionId}` : principal.id;
}

/** Runs the server's authorize hook, if any; scopes are checked before it. */
export function authorized(hook: ((request: AuthorizeRequest) => boolean | Promise<boolean>) | undefined, request: AuthorizeRequest): Promise<boolean> {
  if (hook === undefined) return ALLOWED;
  return Promise.resolve().then(() => hook(request));
}
