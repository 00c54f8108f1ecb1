import {
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import type { SpanStart, TraceSpan, Tracing } from "../../session/tracing.js";
import { TRACEPARENT, TRACESTATE, type Metadata } from "../../wire/metadata.js";

/*
 * OpenTelemetry spans for Protocast. Pass the result as the `tracing` option of createServer
 * and of connect():
 *
 *   import { otelTracing } from "protocast/otel";
 *   const server = createServer({ tracing: otelTracing() });
 *
 * Spans go to the tracer given, else to the tracer named "protocast" of the provider the
 * application registered with @opentelemetry/api (none registered: the API's no-op tracer).
 * Trace context crosses the wire in the W3C `traceparent` and `tracestate` metadata keys
 * (PROTOCOL.md 3.8), written and read here, so that no propagator needs to be registered.
 */

export interface OtelTracingOptions {
  /** The tracer to start spans with. Default: trace.getTracer("protocast"). */
  readonly tracer?: Tracer;
}

const KINDS = { client: SpanKind.CLIENT, server: SpanKind.SERVER, producer: SpanKind.PRODUCER, consumer: SpanKind.CONSUMER } as const;

class OtelSpan implements TraceSpan {
  constructor(
    readonly span: Span,
    /** The context that holds this span, for its children. */
    readonly context: Context,
  ) {}

  fail(code: string, message: string): void {
    this.span.setAttribute("error.type", code);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
  }

  end(): void {
    this.span.end();
  }
}

/** A Tracing that makes OpenTelemetry spans through @opentelemetry/api. */
export function otelTracing(options: OtelTracingOptions = {}): Tracing {
  const tracer = options.tracer ?? trace.getTracer("protocast");
  return {
    start(s: SpanStart): TraceSpan {
      const parent =
        s.parent instanceof OtelSpan ? s.parent.context : s.remoteParent !== undefined ? remoteContext(s.remoteParent) : context.active();
      const span = tracer.startSpan(s.name, { kind: KINDS[s.kind], attributes: s.attributes }, parent);
      return new OtelSpan(span, trace.setSpan(parent, span));
    },
    inject(s: TraceSpan, into: Record<string, string>): void {
      if (!(s instanceof OtelSpan)) return;
      const sc = s.span.spanContext();
      if (!isSpanContextValid(sc)) return;
      into[TRACEPARENT] = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
      const state = sc.traceState?.serialize() ?? "";
      if (state !== "") into[TRACESTATE] = state;
      else delete into[TRACESTATE];
    },
    run<T>(s: TraceSpan, fn: () => T): T {
      return s instanceof OtelSpan ? context.with(s.context, fn) : fn();
    },
  };
}

/** traceparent: version "-" trace-id "-" parent-id "-" flags, in lowercase hex (W3C Trace Context). */
const TRACEPARENT_FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The context of a peer's span, from its traceparent and tracestate; a context without a
 * parent when traceparent is absent or malformed (a new trace starts then). Version ff is
 * invalid; a later version is read for the fields version 00 has.
 */
function remoteContext(metadata: Metadata): Context {
  const m = TRACEPARENT_FORMAT.exec(metadata[TRACEPARENT] ?? "");
  if (m === null || m[1] === "ff" || (m[1] === "00" && m[5] !== undefined)) return ROOT_CONTEXT;
  const state = metadata[TRACESTATE];
  const sc = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: parseInt(m[4]!, 16),
    isRemote: true,
    ...(state !== undefined && state !== "" ? { traceState: createTraceState(state) } : {}),
  };
  return isSpanContextValid(sc) ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}
