/**
 * Application payloads of the workloads: the same number of bytes for every peer. Socket.IO
 * gets a string of ASCII characters, because a Buffer argument turns one event into two
 * WebSocket frames (a placeholder packet and a binary attachment); the others get bytes.
 */

export const ROOM = "bench";

export function payloadBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = 97 + (i % 26);
  return out;
}

export function payloadText(size: number): string {
  return Buffer.from(payloadBytes(size)).toString("latin1");
}
