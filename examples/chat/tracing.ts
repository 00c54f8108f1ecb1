import type { Tracing } from "protocast/node";

/**
 * Tracing for the demo, when PROTOCAST_TRACE asks for it: "console" prints every span the
 * server makes (calls, publishes, deliveries) to standard output through the OpenTelemetry
 * SDK's console exporter. Unset, nothing of OpenTelemetry is loaded.
 */
export async function demoTracing(setting = process.env["PROTOCAST_TRACE"]): Promise<Tracing | undefined> {
  if (setting === undefined || setting === "") return undefined;
  if (setting !== "console") throw new Error(`PROTOCAST_TRACE takes "console", got ${setting}`);
  const [{ context }, { AsyncLocalStorageContextManager }, { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor }, { otelTracing }] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/context-async-hooks"),
    import("@opentelemetry/sdk-trace-base"),
    import("protocast/otel"),
  ]);
  // Spans an application starts inside a handler become children of the handler's span.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] });
  return otelTracing({ tracer: provider.getTracer("protocast-chat") });
}
