import type { SessionStore, SessionWrite } from "../broker/session-store.js";

/** What the keeper needs of a session: its pending write, and how the write went. */
export interface KeptSession {
  readonly storable: boolean;
  takeWrite(): SessionWrite;
  stored(write: SessionWrite): void;
  unwritten(write: SessionWrite): void;
  disowned(): void;
}

/**
 * Writes this node's sessions to a shared session store. Frames addressed to a session wait
 * until the store has them; then they go out. All sessions changed in one turn of the event
 * loop go in one batch, and one batch is in flight at a time, so that under load a batch
 * carries many frames for the price of one round trip.
 */
export class SessionKeeper {
  private readonly dirty = new Set<KeptSession>();
  private readonly ended = new Set<string>();
  private writing = false;
  private queued = false;
  private retryMs = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly refresh: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(
    readonly store: SessionStore,
    readonly owner: string,
    /** How long the store keeps a session nobody writes to: beyond the grace period. */
    readonly ttlMs: number,
    private readonly sessions: () => Iterable<KeptSession>,
    private readonly onError: (e: unknown) => void,
  ) {
    // Sessions with nothing to write still need their records kept alive.
    this.refresh = setInterval(() => {
      for (const s of this.sessions()) this.dirty.add(s);
      this.schedule();
    }, Math.max(1_000, Math.floor(ttlMs / 3)));
    (this.refresh as { unref?: () => void }).unref?.();
  }

  /** The session has something to store. */
  mark(session: KeptSession): void {
    this.dirty.add(session);
    this.schedule();
  }

  /** The session ended: its record goes. */
  forget(sessionId: string): void {
    this.ended.add(sessionId);
    this.schedule();
  }

  private schedule(): void {
    if (this.queued || this.writing || this.retryTimer !== undefined || this.closed) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.writing || this.closed) return;
    const batch = Array.from(this.dirty).filter((s) => s.storable);
    this.dirty.clear();
    const ended = Array.from(this.ended);
    this.ended.clear();
    if (batch.length === 0 && ended.length === 0) return;
    this.writing = true;
    const writes: SessionWrite[] = batch.map((s) => s.takeWrite());
    try {
      if (ended.length > 0) await this.store.remove(this.owner, ended);
      const results = batch.length === 0 ? [] : await this.store.write(this.owner, writes, this.ttlMs);
      this.retryMs = 0;
      for (let i = 0; i < batch.length; i++) {
        if (results[i] === true) batch[i]!.stored(writes[i]!);
        else batch[i]!.disowned();
      }
    } catch (e) {
      // Nothing of the batch is known to be stored: write it all again, after a pause.
      for (let i = 0; i < batch.length; i++) batch[i]!.unwritten(writes[i]!);
      for (const s of batch) this.dirty.add(s);
      for (const id of ended) this.ended.add(id);
      this.onError(e);
      this.retryMs = Math.min(2_000, this.retryMs === 0 ? 50 : this.retryMs * 2);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.schedule();
      }, this.retryMs);
    } finally {
      this.writing = false;
    }
    if (this.dirty.size > 0 || this.ended.size > 0) this.schedule();
  }

  /** Writes what is pending, then stops. */
  async close(): Promise<void> {
    clearInterval(this.refresh);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (let i = 0; i < 100 && this.writing; i++) await new Promise((r) => setTimeout(r, 10));
    await this.flush().catch(() => undefined);
    this.closed = true;
  }
}
