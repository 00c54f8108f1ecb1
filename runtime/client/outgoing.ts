import { codeName } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { messagingAttributes, type SpanStart, type TraceSpan, type Tracing } from "../session/tracing.js";
import type { Metadata as MetadataFrame } from "../wire/envelope.js";
import { TRACEPARENT, mergeMetadata, metadataFrame, type Metadata, type MetadataLimits } from "../wire/metadata.js";

/** What the client needs to send metadata: the connection's defaults, limits and tracing. */
export interface MetadataSettings {
  readonly metadata: Metadata | undefined;
  readonly metadataLimits: MetadataLimits;
  readonly tracing: Tracing | undefined;
}

/** The metadata of one outgoing call or publish, and its span when tracing is on. */
export interface Outgoing {
  readonly metadata: MetadataFrame | undefined;
  readonly span: TraceSpan | undefined;
}

const NONE: Outgoing = { metadata: undefined, span: undefined };

/**
 * The connection's default metadata with the request's own over it and, with tracing, the
 * request's span started and its trace context added; then checked against the limits, so
 * that the runtime's own keys count too. Throws INVALID_ARGUMENT "bad_metadata" before
 * anything is sent (the span, if any, is ended as failed).
 */
export function outgoing(settings: MetadataSettings, own: Metadata | undefined, span: () => SpanStart): Outgoing {
  const merged = mergeMetadata(settings.metadata, own);
  const tracing = settings.tracing;
  if (tracing === undefined) return merged === undefined ? NONE : { metadata: metadataFrame(merged, settings.metadataLimits), span: undefined };
  const started = tracing.start(span());
  try {
    const carried: Record<string, string> = { ...merged };
    tracing.inject(started, carried);
    return { metadata: metadataFrame(carried, settings.metadataLimits), span: started };
  } catch (e) {
    finishSpan(started, e);
    throw e;
  }
}

/** Ends a request's span with its outcome: an error marks it failed with its code's name. */
export function finishSpan(span: TraceSpan, error?: unknown): void {
  if (error !== undefined) {
    const err = ProtocastError.from(error);
    span.fail(codeName(err.code), err.rawMessage);
  }
  span.end();
}

/** Ends the span when the request settles; the request's promise is returned unchanged. */
export function traced<T>(span: TraceSpan | undefined, request: Promise<T>): Promise<T> {
  if (span === undefined) return request;
  request.then(
    () => finishSpan(span),
    (e: unknown) => finishSpan(span, e),
  );
  return request;
}

/**
 * A received channel event that carries trace context: a CONSUMER span "receive <pattern>",
 * child of the span that delivered it, ended at once (what the application then does with the
 * message is its own to trace).
 */
export function receiveSpan(tracing: Tracing, pattern: string, channel: string, metadata: Metadata): void {
  if (metadata[TRACEPARENT] === undefined) return;
  tracing.start({ name: `receive ${pattern}`, kind: "consumer", attributes: messagingAttributes("receive", channel, pattern), remoteParent: metadata }).end();
}
