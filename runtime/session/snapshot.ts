/**
 * A session as it leaves one holder for another, whatever the holders are: a node handing it to
 * another node, a node writing it to a session store, a node claiming it from the store. One
 * shape for every source, so that restoring a session is one piece of code.
 */
export interface SessionSnapshot {
  readonly id: string;
  readonly token: string;
  /** The principal, as JSON text. */
  readonly principal: string;
  /** Seq of the last frame the session numbered for the client. */
  readonly outSeq: number;
  /** Seq of the last client frame it received in order. */
  readonly inSeq: number;
  /** Frames the client has not acknowledged, seq increasing: [seq, encoded envelope]. */
  readonly frames: readonly (readonly [number, Uint8Array])[];
  /** Subscriptions as JSON text: [channel, channel method path, epoch, acknowledged offset][]. */
  readonly subs: string;
  /** Requests not yet answered, as JSON text. */
  readonly calls: string;
}
