/**
 * Output buffers for encoded envelopes.
 *
 * V8 keeps a typed array of up to 64 bytes on the JavaScript heap, but gives a larger one its
 * own off-heap backing store, which costs about a microsecond to create and later to collect:
 * more than encoding a typical 200-byte envelope. So, like Node's Buffer pool, mid-sized
 * outputs are carved from a shared 8 KiB block. Blocks are never reused, so no output ever
 * sees another's bytes.
 *
 * The price: such an output is a view (byteOffset > 0, a larger .buffer), so consumers must
 * honour byteOffset and byteLength, which every Uint8Array consumer should; and while any
 * output of a block is retained (for example in a resend buffer), the whole block stays alive.
 */

const BLOCK_BYTES = 8192;
/** Larger outputs get their own buffer: the allocation is small next to filling them. */
const POOLED_MAX = 2048;
/** Up to this size V8 allocates on its heap, which is as cheap as pooling and pins nothing. */
const ON_HEAP_MAX = 64;

let block = new Uint8Array(0);
let used = 0;

/** A zero-filled, never-shared array of `size` bytes. */
export function allocate(size: number): Uint8Array {
  if (size <= ON_HEAP_MAX || size > POOLED_MAX) return new Uint8Array(size);
  if (size > block.length - used) {
    block = new Uint8Array(BLOCK_BYTES);
    used = 0;
  }
  const out = block.subarray(used, used + size);
  used += size;
  return out;
}
