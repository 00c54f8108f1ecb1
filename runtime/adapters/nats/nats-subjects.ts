/**
 * Channel names become one NATS subject token. Letters, digits, "_", "-" and "/" stay as they
 * are, so "room/42" reads as "room/42" in monitoring tools; every other byte of the name's
 * UTF-8 (".", "*", ">", spaces, "%", non-ASCII) becomes "%XX" in upper-case hex. The empty
 * name, which cannot be a token, is "%" alone. The mapping is one-to-one: a "%" in the output
 * is always an escape, because "%" itself is escaped.
 */
const plain = /^[A-Za-z0-9_\-/]+$/;

export function channelToken(channel: string): string {
  if (channel === "") return "%";
  if (plain.test(channel)) return channel;
  let out = "";
  for (const byte of new TextEncoder().encode(channel)) {
    const c = String.fromCharCode(byte);
    out += plain.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Subjects of one channel: `history` is captured by the stream, `events` carries fan-out. */
export function channelSubjects(prefix: string, channel: string): { readonly history: string; readonly events: string } {
  const token = channelToken(channel);
  return { history: `${prefix}.h.${token}`, events: `${prefix}.e.${token}` };
}
