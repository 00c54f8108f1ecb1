import type { Broker, BrokerPosition, ChannelHistoryOptions, EventMetadata } from "../broker/broker.js";
import { codeName } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { ChannelDef } from "../service/define.js";
import { messagingAttributes, type TraceSpan, type Tracing } from "../session/tracing.js";
import { entriesOf, metadataFrame, type Metadata, type MetadataLimits } from "../wire/metadata.js";

/** Where the trace of a publish continues from: a span of this server, or a client's metadata. */
export interface PublishParent {
  readonly span?: TraceSpan | undefined;
  readonly remote?: Metadata | undefined;
}

/**
 * Publishes one event with its metadata. Metadata from the application is checked against the
 * limits (INVALID_ARGUMENT "bad_metadata"); metadata a client sent was checked on arrival and
 * passes as it is (`checked`). With tracing, the publish is a PRODUCER span whose trace context
 * replaces any in the metadata, so that the nodes that deliver the event continue the trace.
 */
export async function tracedPublish(
  broker: Broker,
  def: ChannelDef,
  channel: string,
  payload: Uint8Array,
  history: ChannelHistoryOptions,
  metadata: Metadata | undefined,
  checked: boolean,
  limits: MetadataLimits,
  tracing: Tracing | undefined,
  parent: PublishParent | undefined,
): Promise<BrokerPosition> {
  if (tracing === undefined) {
    const frame = checked ? entriesOf(metadata) : metadataFrame(metadata, limits);
    return broker.publish(channel, payload, history, frame);
  }
  const span = tracing.start({
    name: `publish ${def.rules.pattern}`,
    kind: "producer",
    attributes: messagingAttributes("publish", channel, def.rules.pattern),
    parent: parent?.span,
    remoteParent: parent?.remote,
  });
  try {
    const frame: EventMetadata | undefined = checked ? entriesOf(metadata) : metadataFrame(metadata, limits);
    const carried: Record<string, string> = {};
    for (const e of frame?.entries ?? []) carried[e.key] = e.value;
    tracing.inject(span, carried);
    return await broker.publish(channel, payload, history, entriesOf(carried));
  } catch (e) {
    const err = ProtocastError.from(e);
    span.fail(codeName(err.code), err.rawMessage);
    throw e;
  } finally {
    span.end();
  }
}
