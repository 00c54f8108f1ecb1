import { CloseCode } from "../errors/close-codes.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { RetransmitBuffer, defaultRetransmitLimits, type Buffered, type RetransmitLimits } from "./retransmit-buffer.js";

/** What an incoming envelope's `seq` is to the receiver (PROTOCOL.md section 4.2). */
export type Arrival = "unsequenced" | "next" | "duplicate";

/**
 * Acknowledge at once, not after the ack delay, when this many received sequenced frames are
 * unacknowledged (PROTOCOL.md section 4.3): a fast sender then never waits on the delay with a
 * full retransmission buffer.
 */
export const ACK_EVERY_FRAMES = 64;

/**
 * Both directions of one session's numbering, the same on client and server: outgoing frames
 * are numbered 1, 2, … and held until a cumulative acknowledgement covers them; incoming frames
 * must come in order, a repeat is a duplicate and a skip is a violation. The counters belong to
 * the session and continue across connections; nothing here knows about sockets or time.
 *
 *   sender                                   receiver
 *   number(frame) -> seq n, held in log      arrived(n): n = in+1 -> "next", in = n
 *                                            arrived(n): n <= in  -> "duplicate"
 *                                            arrived(n): n > in+1 -> close 4500 (gap)
 *   acknowledged(k): frames <= k released    ackSent(): tells the sender in
 *   resumeFrom(k): frames > k sent again     (Resume.last_seq / Resumed.last_seq = in)
 */
export class Sequencer<T> {
  /** Seq of the last frame numbered for sending. */
  outSeq = 0;
  /** Seq of the last frame received in order. */
  inSeq = 0;
  /** Highest `inSeq` the peer has been told about. */
  ackedToPeer = 0;
  /** Sent frames not yet acknowledged, oldest first. */
  readonly log: RetransmitBuffer<T>;

  constructor(limits: RetransmitLimits = defaultRetransmitLimits) {
    this.log = new RetransmitBuffer(limits);
  }

  /** Numbers an outgoing frame and holds it until the peer acknowledges it. */
  number(item: T, bytes: number): number {
    const seq = ++this.outSeq;
    this.log.push(seq, item, bytes);
    return seq;
  }

  /** Applies the peer's cumulative acknowledgement; one above anything sent is a violation. */
  acknowledged(ackSeq: number): void {
    if (ackSeq > this.outSeq) {
      throw new ProtocastError(Code.InvalidArgument, `ack_seq ${ackSeq} is above the last seq sent (${this.outSeq})`, {
        closeCode: CloseCode.ProtocolViolation,
      });
    }
    this.log.ack(ackSeq);
  }

  /** Classifies an incoming seq and advances `inSeq` for the next one; a gap throws (4500). */
  arrived(seq: number): Arrival {
    if (seq === 0) return "unsequenced";
    if (seq <= this.inSeq) return "duplicate";
    if (seq !== this.inSeq + 1) {
      throw new ProtocastError(Code.DataLoss, `sequence gap: expected ${this.inSeq + 1}, got ${seq}`, { closeCode: CloseCode.ProtocolViolation });
    }
    this.inSeq = seq;
    return "next";
  }

  /** Records that an envelope told the peer `upTo` (default: everything received); returns it. */
  ackSent(upTo: number = this.inSeq): number {
    this.ackedToPeer = upTo;
    return upTo;
  }

  /** Whether received frames wait for an acknowledgement. */
  get ackOwed(): boolean {
    return this.ackedToPeer < this.inSeq;
  }

  /** Whether so many frames wait that the acknowledgement should go now (ACK_EVERY_FRAMES). */
  get ackUrgent(): boolean {
    return this.inSeq - this.ackedToPeer >= ACK_EVERY_FRAMES;
  }

  /**
   * Whether every frame after `lastSeq` up to `upTo` is still held, so that the peer can be
   * brought up to date; false also for a `lastSeq` beyond what was sent.
   */
  canResumeFrom(lastSeq: number, upTo: number = this.outSeq): boolean {
    return lastSeq <= upTo && this.log.after(lastSeq, upTo) !== undefined;
  }

  /**
   * The peer has everything up to `lastSeq` (Resume.last_seq, Resumed.last_seq): releases it and
   * returns the frames after it up to `upTo`, oldest first, or undefined when some are gone.
   */
  resumeFrom(lastSeq: number, upTo: number = this.outSeq): Buffered<T>[] | undefined {
    if (lastSeq > upTo) return undefined;
    const frames = lastSeq === upTo ? [] : this.log.after(lastSeq, upTo)?.filter((f) => f.seq <= upTo);
    if (frames === undefined) return undefined;
    this.log.ack(lastSeq);
    return frames;
  }

  /** Continues counters and held frames from a snapshot (another node, a session store). */
  restore(outSeq: number, inSeq: number, frames: Iterable<readonly [number, T, number]>): void {
    this.log.clear();
    this.outSeq = outSeq;
    this.inSeq = this.ackedToPeer = inSeq;
    for (const [seq, item, bytes] of frames) this.log.push(seq, item, bytes);
  }

  /** A new session: both counters back to 0, nothing held. */
  reset(): void {
    this.outSeq = this.inSeq = this.ackedToPeer = 0;
    this.log.clear();
  }
}
