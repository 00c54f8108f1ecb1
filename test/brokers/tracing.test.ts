import { Redis } from "ioredis";
import { context, trace, SpanKind, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type Broker } from "protocast/node";
import { otelTracing } from "protocast/otel";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { createRedisBroker } from "../../runtime/adapters/redis/redis-broker.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { probe, redisUrl, skipReason, uniqueName } from "./services.js";

// One trace across two server nodes on real Redis, made with the OpenTelemetry SDK and an
// in-memory exporter: a client's call (CLIENT) -> the handler on node A (SERVER) -> its
// ctx.publish (PRODUCER) -> Redis -> the delivery on node B (CONSUMER) -> the subscriber's
// receive (CONSUMER). Each participant has its own tracer, so that the test can tell who made
// which span; the W3C trace context crosses every hop in metadata.

const redisDown = skipReason("Redis", await probe(redisUrl));
const prefix = uniqueName("PCTEST_TRACE_");

describe.skipIf(redisDown !== undefined)("a trace across two nodes on Redis", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  const tracer = (name: string) => otelTracing({ tracer: provider.getTracer(name) });
  const nodes: { h: Harness; b: Broker }[] = [];
  /** The span active inside the handler, as the application sees it. */
  let handlerSpan: Span | undefined;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    for (const name of ["node-a", "node-b"]) {
      const b = createRedisBroker({ url: redisUrl, keyPrefix: `${prefix}:` });
      const h = await startHarness({ broker: b, tracing: tracer(name), authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
      h.server.implement(ChatService, {
        async sendMessage(req, ctx) {
          handlerSpan = trace.getActiveSpan();
          const at = await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { text: req.text, author: ctx.principal.id });
          return { messageId: String(at.offset) };
        },
        listRooms: () => ({ rooms: [] }),
        publishTyping: (_params, message, ctx) => ({ user: ctx.principal.id, typing: message.typing }),
      });
      nodes.push({ h, b });
    }
  });

  afterAll(async () => {
    for (const { h, b } of nodes) {
      await h.close();
      await b.close();
    }
    context.disable();
    const admin = new Redis(redisUrl);
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
    await provider.shutdown();
  });

  it("client -> node A handler -> publish -> Redis -> node B -> subscriber is one trace of parent and child spans", async () => {
    const [a, b] = [nodes[0]!.h, nodes[1]!.h];
    const room = uniqueName("t");
    // The subscriber is a client of node B; the caller a client of node A.
    const sub = createClient(ChatService, b.client({ token: "reader", tracing: tracer("subscriber") })).roomEvents({ roomId: room });
    const events = sub.withMetadata()[Symbol.asyncIterator]();
    await sub.ready;
    const caller = createClient(ChatService, a.client({ token: "writer", tracing: tracer("caller") }));

    // The application's own span around the call: the client span must become its child.
    const app = provider.getTracer("app").startSpan("checkout");
    await context.with(trace.setSpan(context.active(), app), () => caller.sendMessage({ roomId: room, text: "traced" }));
    app.end();
    const delivered = (await events.next()).value!;
    expect(delivered.message.text).toBe("traced");
    await until(() => exporter.getFinishedSpans().some((s) => s.instrumentationScope.name === "subscriber"), "the subscriber's span");

    const spans = exporter.getFinishedSpans();
    const one = (scope: string, kind: SpanKind): ReadableSpan => {
      const found = spans.filter((s) => s.instrumentationScope.name === scope && s.kind === kind);
      expect(found, `${scope} ${SpanKind[kind]} spans: ${spans.map((s) => `${s.instrumentationScope.name}/${s.name}`).join(", ")}`).toHaveLength(1);
      return found[0]!;
    };
    const client = one("caller", SpanKind.CLIENT);
    const server = one("node-a", SpanKind.SERVER);
    const producer = one("node-a", SpanKind.PRODUCER);
    const deliver = one("node-b", SpanKind.CONSUMER);
    const receive = one("subscriber", SpanKind.CONSUMER);

    // One trace id throughout, and each span the child of the one before.
    const traceId = app.spanContext().traceId;
    for (const s of [client, server, producer, deliver, receive]) expect(s.spanContext().traceId, s.name).toBe(traceId);
    const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
    expect(parentOf(client)).toBe(app.spanContext().spanId);
    expect(parentOf(server)).toBe(client.spanContext().spanId);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(parentOf(producer)).toBe(server.spanContext().spanId);
    expect(parentOf(deliver)).toBe(producer.spanContext().spanId);
    expect(deliver.parentSpanContext?.isRemote).toBe(true);
    expect(parentOf(receive)).toBe(deliver.spanContext().spanId);
    // Node A ran the handler inside its SERVER span, so the application's spans nest there.
    expect(handlerSpan?.spanContext().spanId).toBe(server.spanContext().spanId);

    // Names and attributes after the RPC and messaging conventions.
    const rpc = { "rpc.system": "protocast", "rpc.service": "acme.chat.v1.ChatService", "rpc.method": "SendMessage" };
    expect([client.name, client.attributes]).toEqual(["acme.chat.v1.ChatService/SendMessage", rpc]);
    expect([server.name, server.attributes]).toEqual(["acme.chat.v1.ChatService/SendMessage", rpc]);
    const channel = `room/${room}`;
    expect(producer.name).toBe("publish room/{room_id}");
    expect(producer.attributes).toMatchObject({ "messaging.system": "protocast", "messaging.destination.name": channel, "messaging.operation.type": "send" });
    expect(deliver.name).toBe("deliver room/{room_id}");
    expect(deliver.attributes).toMatchObject({ "messaging.destination.name": channel, "messaging.operation.type": "process" });
    expect(receive.name).toBe("receive room/{room_id}");
    expect(receive.attributes).toMatchObject({ "messaging.destination.name": channel, "messaging.operation.type": "receive" });

    // What the subscriber's application reads: node B's context, in the W3C form.
    expect(delivered.metadata["traceparent"]).toBe(`00-${traceId}-${deliver.spanContext().spanId}-01`);
  }, 20_000);

  it("a failed call marks the client and server spans with the error code", async () => {
    const caller = createClient(ChatService, nodes[0]!.h.client({ token: "writer", tracing: tracer("failing") }));
    exporter.reset();
    // An empty room id does not match the channel pattern: ctx.publish fails, and so does the call.
    const err = await caller.sendMessage({ roomId: "", text: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await until(() => exporter.getFinishedSpans().some((s) => s.instrumentationScope.name === "failing"), "the client's span");
    const spans = exporter.getFinishedSpans();
    const client = spans.find((s) => s.instrumentationScope.name === "failing")!;
    const server = spans.find((s) => s.kind === SpanKind.SERVER && s.parentSpanContext?.spanId === client.spanContext().spanId)!;
    for (const s of [client, server]) {
      expect(s.status.code, s.name).toBe(2); // SpanStatusCode.ERROR
      expect(typeof s.attributes["error.type"]).toBe("string");
    }
  }, 20_000);
});
