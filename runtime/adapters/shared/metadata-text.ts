import type { EventMetadata } from "../../broker/broker.js";

/**
 * Event metadata as the Redis and NATS brokers store it: a JSON array of [key, value] pairs.
 * JSON escapes control characters, so the text never holds a line break (NATS header values
 * may not) and reads back exactly, whatever the values hold.
 */
export function metadataToText(metadata: EventMetadata | undefined): string {
  if (metadata === undefined || metadata.entries.length === 0) return "";
  return JSON.stringify(metadata.entries.map((e) => [e.key, e.value]));
}

/**
 * Reads what metadataToText wrote; undefined for "" and for text that is not such an array
 * (written by something else), so that a damaged record costs its metadata, not its event.
 */
export function metadataFromText(text: string | undefined): EventMetadata | undefined {
  if (text === undefined || text === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const entries = [];
  for (const pair of parsed as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "string") return undefined;
    entries.push({ key: pair[0], value: pair[1] });
  }
  return entries.length === 0 ? undefined : { entries };
}
