import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { CallDef } from "../service/define.js";
import type { Metadata } from "../wire/metadata.js";
import { keptByOutbox, type Outbox, type OutboxOutcome } from "./outbox-api.js";

/**
 * A call of an earlier client recovered from the outbox, typed per method. Generated clients
 * print a union of these over the service's outbox methods (`ChatServiceRecovered`), so that
 * `if (r.method === "sendMessage")` narrows request and response.
 */
export interface RecoveredCall<N extends string, I, O> {
  /** The method's local name in the generated client, such as "sendMessage". */
  readonly method: N;
  /** Method path on the wire. */
  readonly path: string;
  readonly idempotencyKey: string;
  readonly request: I;
  /** When the earlier client stored the call, ms since the epoch. */
  readonly storedAt: number;
  /** The metadata the call was sent with (and sent again with); empty for a call without any. */
  readonly metadata: Metadata;
  readonly outcome: OutboxOutcome<O>;
}

/** The calls of a service's definition that go through the outbox. */
export function outboxCalls(calls: Iterable<CallDef>): CallDef[] {
  return Array.from(calls).filter((def) => keptByOutbox(def.rules));
}

/** recovered() of a generated client: the outbox's items of these methods, decoded. */
export function recoveredCalls(outbox: Outbox, calls: readonly CallDef[]): AsyncIterableIterator<RecoveredCall<string, unknown, unknown>> {
  const byPath = new Map(calls.map((def) => [def.path, def]));
  return outbox.recovered({
    methods: Array.from(byPath.keys()),
    map: (item) => {
      const def = byPath.get(item.method)!;
      // A request that does not decode makes the map throw: the outbox reports and drops it.
      const request = def.inputCodec.decode(item.request);
      return { method: def.localName, path: def.path, idempotencyKey: item.idempotencyKey, request, storedAt: item.storedAt, metadata: item.metadata, outcome: decodeOutcome(def, item.outcome) };
    },
  });
}

function decodeOutcome<O extends DescMessage>(def: CallDef<DescMessage, O>, outcome: OutboxOutcome<Uint8Array>): OutboxOutcome<MessageShape<O>> {
  if (outcome.kind !== "reply") return outcome;
  try {
    return { kind: "reply", response: def.outputCodec.decode(outcome.response) };
  } catch (e) {
    return { kind: "error", error: new ProtocastError(Code.DataLoss, `reply of ${def.path} does not decode`, { cause: e }) };
  }
}
