import { codeName, type Code } from "../errors/code.js";
import type { Outcome } from "../session/idempotency-window.js";
import { rpcAttributes, type TraceSpan, type Tracing } from "../session/tracing.js";
import { NO_METADATA, type Metadata } from "../wire/metadata.js";

/**
 * The SERVER span of one call, a child of the caller's span when the call's metadata carries
 * trace context (PROTOCOL.md 3.8). Named "package.Service/Method", as RPC spans are.
 */
export function startCallSpan(tracing: Tracing, method: string, metadata: Metadata): TraceSpan {
  return tracing.start({
    name: method,
    kind: "server",
    attributes: rpcAttributes(method),
    remoteParent: metadata === NO_METADATA ? undefined : metadata,
  });
}

/** Ends a call's span with its outcome: an Error answer marks it failed with the code's name. */
export function endCallSpan(span: TraceSpan, outcome: Outcome): void {
  if (outcome.kind === "error") span.fail(codeName(outcome.code as Code), outcome.message);
  span.end();
}
