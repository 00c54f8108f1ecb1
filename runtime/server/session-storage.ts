import type { SessionWrite } from "../broker/session-store.js";
import type { Sequencer } from "../session/sequencer.js";
import type { Frame } from "../wire/envelope.js";

/** A request the client is owed an answer for, as the session store keeps it. */
export type PendingRequest =
  | { readonly k: "call" | "pub"; readonly id: number }
  | {
      readonly k: "sub";
      readonly id: number;
      readonly method: string;
      readonly channel: string;
      readonly recover: boolean;
      readonly epoch: string;
      readonly offset: number;
    };

/** What the store bookkeeping needs of its session. */
export interface StorageOwner {
  readonly seq: Sequencer<Uint8Array>;
  /** Writes bytes to the session's connection, if it has one. */
  sendBytes(bytes: Uint8Array): void;
  /** The session has something for the store: the keeper writes it soon. */
  markDirty(): void;
  /** The store caught up with received frames: an acknowledgement may tell the client. */
  ackReady(): void;
}

/**
 * What a session with a shared session store tracks about it (PROTOCOL.md, scale-out): frames
 * are numbered at once but go out only once the store has them, acknowledgements never claim
 * more than the store holds, and the requests still unanswered are listed so that a node
 * taking over can answer them. A session without a store has none of this.
 */
export class SessionStorage {
  /** Frames assigned a seq and not yet stored: they go out once the store has them. */
  private unstored: [number, Uint8Array][] = [];
  /** Highest seq the store has; frames up to it may be sent. */
  storedSeq = 0;
  /** Highest client seq the store has; acknowledgements never claim more. */
  private storedInSeq = 0;
  /** Frames handed to the write in flight. */
  private writingFrames = 0;
  private needsCreate = true;
  private subsChanged = true;
  private requestsChanged = true;
  /** Requests received and not yet answered, by id: a node that takes over answers them. */
  private readonly requests = new Map<number, PendingRequest>();
  /** Resolvers waiting for the store to catch up with a seq. */
  private storedWaiters: { seq: number; resolve: () => void }[] = [];

  constructor(private readonly owner: StorageOwner) {}

  /** Continued from the store: it has everything up to these counters already. */
  fromStore(outSeq: number, inSeq: number): void {
    this.storedSeq = outSeq;
    this.storedInSeq = inSeq;
    this.needsCreate = false;
  }

  /** Requests a snapshot listed as unanswered. */
  restoreRequests(list: Iterable<PendingRequest>): void {
    for (const r of list) this.requests.set(r.id, r);
  }

  /** The unanswered requests, for a snapshot or a write. */
  pending(): PendingRequest[] {
    return Array.from(this.requests.values());
  }

  /**
   * After a handover: the store has frames up to `storedOutSeq`; the rest of the log is
   * written from here before it goes out.
   */
  reconcile(storedOutSeq: number, storedInSeq: number, missing: boolean): void {
    const seq = this.owner.seq;
    this.storedSeq = storedOutSeq;
    this.storedInSeq = Math.min(storedInSeq, seq.inSeq);
    this.needsCreate = missing;
    this.subsChanged = this.requestsChanged = true;
    this.unstored = seq.log.all().filter((f) => f.seq > storedOutSeq).map((f): [number, Uint8Array] => [f.seq, f.item]);
    this.writingFrames = 0;
    if (this.unstored.length > 0 || missing) this.owner.markDirty();
  }

  /** A numbered frame waits for the store before it goes out. */
  hold(seq: number, bytes: Uint8Array): void {
    this.unstored.push([seq, bytes]);
    this.owner.markDirty();
  }

  /** The highest client seq the client may be told was received. */
  ackable(): number {
    if (this.storedInSeq < this.owner.seq.inSeq) this.owner.markDirty();
    return this.storedInSeq;
  }

  /** The channel list changed; the next write carries it. */
  subsTouched(): void {
    this.subsChanged = true;
  }

  /** What the store lacks, for the keeper's next batch. */
  takeWrite(id: string, create: () => SessionWrite["create"], subs: () => string): SessionWrite {
    const seq = this.owner.seq;
    const frames = this.unstored.slice(this.writingFrames);
    this.writingFrames = this.unstored.length;
    const w: SessionWrite = {
      id,
      create: this.needsCreate ? create() : undefined,
      frames,
      outSeq: frames.at(-1)?.[0] ?? this.storedSeq,
      inSeq: seq.inSeq,
      ackSeq: seq.log.acked,
      subs: this.subsChanged ? subs() : undefined,
      calls: this.requestsChanged ? JSON.stringify(this.pending()) : undefined,
    };
    this.needsCreate = this.subsChanged = this.requestsChanged = false;
    return w;
  }

  /** The store has a write: its frames go out, and acknowledgements may claim its inSeq. */
  stored(w: SessionWrite): void {
    const seq = this.owner.seq;
    const n = w.frames.length;
    const out = this.unstored.splice(0, n);
    this.writingFrames -= n;
    this.storedSeq = Math.max(this.storedSeq, w.outSeq);
    this.storedInSeq = Math.max(this.storedInSeq, w.inSeq);
    for (const [, bytes] of out) {
      seq.ackedToPeer = Math.max(seq.ackedToPeer, Math.min(w.inSeq, this.storedInSeq));
      this.owner.sendBytes(bytes);
    }
    if (this.storedWaiters.length > 0) {
      const ready = this.storedWaiters.filter((x) => x.seq <= this.storedSeq);
      this.storedWaiters = this.storedWaiters.filter((x) => x.seq > this.storedSeq);
      for (const x of ready) x.resolve();
    }
    if (seq.ackedToPeer < this.storedInSeq) this.owner.ackReady();
  }

  /** A write did not reach the store: the keeper writes it again. */
  unwritten(w: SessionWrite): void {
    this.writingFrames -= w.frames.length;
    if (w.create !== undefined) this.needsCreate = true;
    if (w.subs !== undefined) this.subsChanged = true;
    if (w.calls !== undefined) this.requestsChanged = true;
  }

  /** Resolves once every frame assigned so far is stored; undefined when it already is. */
  whenStored(): Promise<void> | undefined {
    const seq = this.owner.seq.outSeq;
    if (this.storedSeq >= seq) return undefined;
    return new Promise((resolve) => this.storedWaiters.push({ seq, resolve }));
  }

  /** Notes a request that expects an answer. */
  requested(r: PendingRequest): void {
    this.requests.set(r.id, r);
    this.requestsChanged = true;
  }

  /** Notes what a frame about to be sent answers or changes. */
  answered(frame: Frame): void {
    let id = 0;
    if (frame.case === "reply" || frame.case === "error" || frame.case === "subscribed") id = frame.value.id;
    if (frame.case === "subscribed" || frame.case === "unsubscribed") this.subsChanged = true;
    if (id !== 0 && this.requests.delete(id)) this.requestsChanged = true;
  }

  /** Takes every unanswered request off the list (they are about to be answered here). */
  takePending(): PendingRequest[] {
    const all = this.pending();
    this.requests.clear();
    this.requestsChanged = true;
    return all;
  }
}
