/**
 * Sequenced frames one side has sent and the other has not acknowledged yet, oldest first.
 * Frames leave on a cumulative acknowledgement; after a resume the ones the peer lacks are
 * sent again with their original numbers. Bounded by count and bytes; the owner decides what
 * overflowing means (close a slow peer, or mark a detached session lost).
 */
export interface RetransmitLimits {
  /** Most frames held. Default 10 000. */
  readonly maxFrames: number;
  /** Most bytes held. Default 4 MiB. */
  readonly maxBytes: number;
}

export const defaultRetransmitLimits: RetransmitLimits = { maxFrames: 10_000, maxBytes: 4 * 1024 * 1024 };

export interface Buffered<T> {
  readonly seq: number;
  readonly item: T;
  readonly bytes: number;
}

export class RetransmitBuffer<T> {
  private entries: Buffered<T>[] = [];
  private head = 0;
  private heldBytes = 0;
  /** Highest seq acknowledged by the peer. */
  acked = 0;

  constructor(private readonly limits: RetransmitLimits = defaultRetransmitLimits) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** True when past either bound. The frame is kept either way: nothing sequenced is dropped here. */
  get overflowing(): boolean {
    return this.size > this.limits.maxFrames || this.heldBytes > this.limits.maxBytes;
  }

  /** Appends the frame numbered `seq`, which must follow the last one. */
  push(seq: number, item: T, bytes: number): void {
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && this.size > 0 && seq !== last.seq + 1) {
      throw new RangeError(`retransmit buffer: seq ${seq} does not follow ${last.seq}`);
    }
    this.entries.push({ seq, item, bytes });
    this.heldBytes += bytes;
  }

  /** Drops every frame up to and including `seq`. Lower values than seen before are ignored. */
  ack(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = seq;
    while (this.head < this.entries.length && this.entries[this.head]!.seq <= seq) {
      this.heldBytes -= this.entries[this.head]!.bytes;
      this.head++;
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Seq of the oldest frame held, or undefined when empty. */
  get firstSeq(): number | undefined {
    return this.entries[this.head]?.seq;
  }

  /**
   * The frames after `seq`, oldest first, or undefined when some of them are no longer held
   * (they were acknowledged earlier, which a peer asking for them contradicts, or cleared).
   */
  after(seq: number, lastAssigned: number): Buffered<T>[] | undefined {
    if (seq >= lastAssigned) return [];
    const first = this.firstSeq;
    if (first === undefined || first > seq + 1) return undefined;
    const out: Buffered<T>[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.seq > seq) out.push(e);
    }
    return out;
  }

  /** Every frame held, oldest first. */
  all(): Buffered<T>[] {
    return this.entries.slice(this.head);
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
    this.heldBytes = 0;
  }
}
