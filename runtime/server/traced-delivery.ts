import type { BrokerEvent, EventMetadata } from "../broker/broker.js";
import type { ChannelDef } from "../service/define.js";
import { messagingAttributes, type TraceSpan, type Tracing } from "../session/tracing.js";
import { TRACEPARENT, entriesOf, metadataView } from "../wire/metadata.js";

/**
 * The CONSUMER span of one event's delivery on this node, a child of the publisher's span
 * named by the event's traceparent, and the event's metadata with this span's trace context
 * in place of the publisher's. Undefined for an event without trace context: a node starts
 * no trace of its own for every event it delivers.
 */
export function deliveryMetadata(tracing: Tracing, def: ChannelDef, event: BrokerEvent): { span: TraceSpan; metadata: EventMetadata | undefined } | undefined {
  const received = metadataView(event.metadata);
  if (received[TRACEPARENT] === undefined) return undefined;
  const pattern = def.rules.pattern;
  const span = tracing.start({
    name: `deliver ${pattern}`,
    kind: "consumer",
    attributes: { ...messagingAttributes("deliver", event.channel, pattern), "messaging.message.id": `${event.epoch}:${event.offset}` },
    remoteParent: received,
  });
  const carried: Record<string, string> = { ...received };
  tracing.inject(span, carried);
  return { span, metadata: entriesOf(carried) };
}
