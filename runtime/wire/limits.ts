import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";

/**
 * Bounds the envelope decoder enforces on bytes from a peer. Each one caps memory or work
 * that a single hostile frame could otherwise cost the receiver.
 */
export interface DecodeLimits {
  /**
   * Largest encoded envelope accepted, in bytes. Checked before any byte is parsed.
   * Default 65536 (64 KiB), the protocol's advertised maximum; the WebSocket layer should
   * refuse larger messages with the same number so that they are never buffered at all.
   */
  readonly maxEnvelopeBytes: number;
  /**
   * Largest number of entries in any one repeated field (Subscribed.members, Presence.joined,
   * Presence.left, Ack.channels). Default 10000. An empty entry costs 2 bytes on the wire but
   * an object on the heap, so without this bound 64 KiB could become ~32k objects.
   */
  readonly maxRepeated: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxEnvelopeBytes: 65536,
  maxRepeated: 10000,
});

/**
 * Fills in defaults and validates. Servers and clients call this once when they are created,
 * so that a bad option fails at start-up rather than on the first frame.
 */
export function resolveDecodeLimits(limits: Partial<DecodeLimits> = {}): DecodeLimits {
  const resolved = Object.freeze(validated(limits));
  resolvedLimits.add(resolved);
  return resolved;
}

/** Limits that resolveDecodeLimits produced, so that passing them again costs no validation. */
const resolvedLimits = new WeakSet<DecodeLimits>([DEFAULT_DECODE_LIMITS]);

/**
 * The limits for one decode: the defaults when none are given, the object itself when
 * resolveDecodeLimits made it, otherwise a validated copy (a caller decoding many frames with
 * the same options should resolve them once instead).
 */
export function decodeLimits(limits: Partial<DecodeLimits> | undefined): DecodeLimits {
  if (limits === undefined) return DEFAULT_DECODE_LIMITS;
  if (resolvedLimits.has(limits as DecodeLimits)) return limits as DecodeLimits;
  return validated(limits);
}

function validated(limits: Partial<DecodeLimits>): DecodeLimits {
  const maxEnvelopeBytes = limits.maxEnvelopeBytes ?? DEFAULT_DECODE_LIMITS.maxEnvelopeBytes;
  const maxRepeated = limits.maxRepeated ?? DEFAULT_DECODE_LIMITS.maxRepeated;
  checkLimit("maxEnvelopeBytes", maxEnvelopeBytes, 1);
  checkLimit("maxRepeated", maxRepeated, 0);
  return { maxEnvelopeBytes, maxRepeated };
}

function checkLimit(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ProtocastError(
      Code.InvalidArgument,
      `decode limit ${name} must be an integer >= ${String(min)}, got ${String(value)}`,
      { reason: "bad_limit" },
    );
  }
}
