// OpenTelemetry entry ("protocast/otel"): spans for calls, publishes and deliveries, with the
// W3C trace context carried in metadata. Needs the optional peer dependency
// `@opentelemetry/api`; the main entries never load it. Works in browsers and in Node.
export { otelTracing, type OtelTracingOptions } from "./adapters/otel/otel-tracing.js";
export type { Tracing, TraceSpan, SpanStart, SpanKind } from "./session/tracing.js";
