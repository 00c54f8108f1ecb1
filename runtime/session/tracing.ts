import type { Metadata } from "../wire/metadata.js";

/**
 * The seam between the runtime and a tracing library. The runtime's client and server only
 * call these few methods; `otelTracing()` (the "protocast/otel" entry) implements them with
 * OpenTelemetry, so that neither the core nor an application without tracing loads
 * `@opentelemetry/api`. With no Tracing given, the runtime makes no span and allocates nothing
 * for tracing.
 */
export interface Tracing {
  /** Starts a span. */
  start(span: SpanStart): TraceSpan;
  /**
   * Adds the span's W3C trace context (PROTOCOL.md 3.8) to metadata about to be sent:
   * `traceparent`, and `tracestate` when the span has one. Entries already there under those
   * keys are replaced.
   */
  inject(span: TraceSpan, into: Record<string, string>): void;
  /**
   * Runs `fn` with the span as the current one, so that spans the application starts inside
   * it (in a handler, say) become its children.
   */
  run<T>(span: TraceSpan, fn: () => T): T;
}

/** What the runtime names a span by; see README "Metadata and tracing" for the names used. */
export type SpanKind = "client" | "server" | "producer" | "consumer";

export interface SpanStart {
  readonly name: string;
  readonly kind: SpanKind;
  readonly attributes: Readonly<Record<string, string | number>>;
  /**
   * The parent: a span of the runtime, or metadata that arrived from a peer (its traceparent
   * and tracestate); neither means the caller's current span, if any.
   */
  readonly parent?: TraceSpan | undefined;
  readonly remoteParent?: Metadata | undefined;
}

/** A span the runtime started; it ends it once. */
export interface TraceSpan {
  /** Marks the span failed, with the Protocast code's name (such as "NOT_FOUND") and a message. */
  fail(code: string, message: string): void;
  end(): void;
}

/** RPC semantic-convention attributes of a method path "package.Service/Method". */
export function rpcAttributes(path: string): Record<string, string> {
  const slash = path.lastIndexOf("/");
  return { "rpc.system": "protocast", "rpc.service": path.slice(0, slash), "rpc.method": path.slice(slash + 1) };
}

/** Messaging semantic-convention attributes of one channel. */
export function messagingAttributes(operation: "publish" | "deliver" | "receive", channel: string, pattern: string): Record<string, string> {
  return {
    "messaging.system": "protocast",
    "messaging.operation.name": operation,
    "messaging.operation.type": operation === "publish" ? "send" : operation === "deliver" ? "process" : "receive",
    "messaging.destination.name": channel,
    "messaging.destination.template": pattern,
  };
}
