/**
 * A 53-bit non-cryptographic hash of bytes, returned as a safe integer. Used to tell whether
 * a retried request carries the same payload as the first; two independent 32-bit lanes
 * (multiply-xorshift mixing) keep accidental collisions around one in 2^53.
 */
export function hashBytes(data: Uint8Array, seed = 0): number {
  let h1 = 0x9e3779b9 ^ seed;
  let h2 = 0x85ebca6b ^ seed;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) ^ Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b) ^ Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35);
  return 0x200000 * (h2 >>> 0 & 0x1fffff) + (h1 >>> 0);
}
