/**
 * A bidirectional, message-oriented byte channel: one WebSocket, one in-memory pipe, or later
 * an HTTP fallback. Messages keep their boundaries and order. Only web-standard types appear
 * here so that server and client code above it runs in Node and in browsers alike.
 *
 * Delivery is push-style (a handler per transport) rather than an async iterator: the
 * broadcast path sends to thousands of transports per publish and must not allocate a
 * promise per message.
 */
export interface Transport {
  /** Queues one message. Messages sent after close are dropped silently. */
  send(data: Uint8Array): void;
  /**
   * Queues one message whose bytes are shared with many transports (a channel event). A
   * transport may prepare such bytes once for all of them. Optional; send() otherwise.
   */
  sendShared?(data: Uint8Array): void;
  /** Bytes queued and not yet handed to the network; drives back-pressure. */
  readonly bufferedAmount: number;
  /** Starts the close handshake; the handler's onClose runs once, later. */
  close(code: number, reason: string): void;
  /** Drops the link at once, without a close handshake (a peer that does not read). */
  abort(): void;
  /** Installs the receiver. Called once, before any message is delivered. */
  attach(handler: TransportHandler): void;
}

export interface TransportHandler {
  onMessage(data: Uint8Array): void;
  /** Runs exactly once, whoever closed. `code` is 1006 when the link just dropped. */
  onClose(code: number, reason: string): void;
  /** Runs when bytes queued earlier have been handed to the network (bufferedAmount fell). */
  onDrain?(): void;
}
