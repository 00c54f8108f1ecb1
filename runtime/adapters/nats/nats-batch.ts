/**
 * The body of a NATS message that carries several consecutive events of one channel: for each
 * event, its length as a 4-byte big-endian unsigned integer, then its bytes. A message of one
 * event carries that event's payload as it is, with no framing, so the two forms are told apart
 * by the message's event count (the Protocast-Count header, 1 when absent).
 */
export function encodeBatch(payloads: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of payloads) size += 4 + p.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of payloads) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/**
 * The `count` payloads of a body, as views into it; undefined when the body is not `count`
 * framed payloads that fill it exactly (a message not written by Protocast).
 */
export function decodeBatch(body: Uint8Array, count: number): Uint8Array[] | undefined {
  if (count === 1) return [body];
  if (!Number.isSafeInteger(count) || count < 1) return undefined;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (out.length < count) {
    if (at + 4 > body.length) return undefined;
    const length = view.getUint32(at);
    if (at + 4 + length > body.length) return undefined;
    out.push(body.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return at === body.length ? out : undefined;
}
