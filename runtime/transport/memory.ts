import type { Transport, TransportHandler } from "./transport.js";

/**
 * Two connected in-memory transports, for tests of the layers above. Messages are delivered
 * in a later microtask, in order, like a socket would; `cut()` drops the link without a close
 * frame, as a network failure would (both sides see 1006).
 */
export interface MemoryTransportPair {
  readonly client: Transport;
  readonly server: Transport;
  /** Drops the link abruptly: messages in flight are lost, both sides get onClose(1006). */
  cut(): void;
}

export function createMemoryTransportPair(): MemoryTransportPair {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return {
    client: a,
    server: b,
    cut() {
      a.finish(1006, "");
      b.finish(1006, "");
    },
  };
}

class MemoryEnd implements Transport {
  peer: MemoryEnd | undefined;
  private handler: TransportHandler | undefined;
  private pending: Uint8Array[] = [];
  private closed = false;
  bufferedAmount = 0;

  attach(handler: TransportHandler): void {
    this.handler = handler;
    const queued = this.pending;
    this.pending = [];
    for (const m of queued) handler.onMessage(m);
  }

  send(data: Uint8Array): void {
    const peer = this.peer;
    if (this.closed || peer === undefined) return;
    this.bufferedAmount += data.byteLength;
    queueMicrotask(() => {
      this.bufferedAmount -= data.byteLength;
      if (this.closed) return;
      peer.deliver(data);
      if (this.bufferedAmount === 0) this.handler?.onDrain?.();
    });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    const peer = this.peer;
    queueMicrotask(() => {
      this.finish(code, reason);
      peer?.finish(code, reason);
    });
  }

  abort(): void {
    const peer = this.peer;
    this.finish(1006, "");
    peer?.finish(1006, "");
  }

  private deliver(data: Uint8Array): void {
    if (this.closed) return;
    if (this.handler === undefined) this.pending.push(data);
    else this.handler.onMessage(data);
  }

  finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.handler?.onClose(code, reason);
  }
}
