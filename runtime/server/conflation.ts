import type { ChannelDef } from "../service/define.js";

/**
 * The conflation key of one event: the value of the field the .proto names, as a string.
 * Computed once per event on a node (not per subscriber), and only for channels whose
 * overflow policy is "conflate"; "" otherwise, or when the payload does not decode.
 */
export function conflationKey(def: ChannelDef, payload: Uint8Array): string {
  const field = def.rules.conflationKey;
  if (def.rules.overflow !== "conflate" || field === "") return "";
  try {
    const message = def.messageCodec.decode(payload) as unknown as Record<string, unknown>;
    return String(message[field] ?? "");
  } catch {
    return "";
  }
}
