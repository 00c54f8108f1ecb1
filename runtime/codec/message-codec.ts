import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";

/**
 * Binary codec of one message type, byte-compatible with protobuf-es: `encode` gives the bytes
 * of `toBinary(desc, create(desc, message))` and `decode` the message of `fromBinary`. Generated
 * files print specialised ones; `reflectionCodec` builds one for any descriptor.
 */
export interface MessageCodec<D extends DescMessage = DescMessage> {
  /** Encodes a message or an init shape (a plain object, possibly partial), as `create` takes. */
  encode(message: MessageInitShape<D>): Uint8Array;
  /** Decodes a whole buffer; throws a ProtocastError (InvalidArgument or ResourceExhausted). */
  decode(bytes: Uint8Array, limits?: Partial<PayloadLimits>): MessageShape<D>;
  /** Length of what `encode` returns for the same message. */
  size(message: MessageInitShape<D>): number;
}

/** Bounds a payload decoder enforces on bytes from a peer. */
export interface PayloadLimits {
  /**
   * Deepest nesting of messages, the outermost counting 1. Default 100, protobuf-es's
   * `recursionLimit`, so that both paths accept and refuse the same payloads.
   */
  readonly maxDepth: number;
  /**
   * Most entries of one repeated field, map or the unknown fields of one message. Default
   * 65536: one entry costs at least a byte on the wire, so a payload under the default 64 KiB
   * envelope never reaches it; the bound matters when maxEnvelopeBytes is raised, because an
   * empty message entry costs 2 bytes on the wire but an object on the heap.
   */
  readonly maxRepeated: number;
}

export const DEFAULT_PAYLOAD_LIMITS: PayloadLimits = Object.freeze({ maxDepth: 100, maxRepeated: 65536 });

/** The defaults, or a validated copy of what the caller gave. */
export function payloadLimits(limits: Partial<PayloadLimits> | undefined): PayloadLimits {
  if (limits === undefined || limits === DEFAULT_PAYLOAD_LIMITS) return DEFAULT_PAYLOAD_LIMITS;
  const maxDepth = limits.maxDepth ?? DEFAULT_PAYLOAD_LIMITS.maxDepth;
  const maxRepeated = limits.maxRepeated ?? DEFAULT_PAYLOAD_LIMITS.maxRepeated;
  for (const [name, value] of [["maxDepth", maxDepth], ["maxRepeated", maxRepeated]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ProtocastError(Code.InvalidArgument, `payload limit ${name} must be an integer >= 1, got ${String(value)}`, { reason: "bad_limit" });
    }
  }
  return { maxDepth, maxRepeated };
}
