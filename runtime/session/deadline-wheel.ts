/**
 * Default width of one slot of a DeadlineWheel, in ms: how late past its deadline an item may
 * be reported. Small next to any call timeout (a timeout is at least 1 ms, typically seconds),
 * large enough that a burst of calls lands in a handful of slots.
 */
export const DEADLINE_RESOLUTION_MS = 10;

/**
 * Deadlines of many items watched with one timer, and no timer per item. Time is cut into
 * slots of `resolutionMs`; an item due at `at` goes into the slot that ends at or after `at`,
 * and the whole slot falls due when it ends. So an item is never reported before its deadline
 * and at most `resolutionMs` after it (plus the owner's own timer lag).
 *
 * Nothing here reads a clock or starts a timer: the owner passes the time in, and arms one
 * timer for `nextAt`, the end of the earliest slot holding an item. Adding and deleting are
 * O(1); finding the next slot after an expiry scans the slots held, which are few (items due
 * within one slot share it).
 *
 *   add(item, at) -> ticket          delete(item, ticket)          expire(now) -> items due
 *   slot = ceil(at / resolution)     removes it from its slot      every slot ending <= now
 */
export class DeadlineWheel<T> {
  private readonly slots = new Map<number, Set<T>>();
  private count = 0;
  /** The earliest slot held, valid unless `stale`. */
  private earliest = Infinity;
  private stale = false;
  /** The slot added to last: items added in a burst share a slot, and skip the map lookup. */
  private lastSlot = Number.NaN;
  private lastSet: Set<T> | undefined;

  constructor(readonly resolutionMs: number = DEADLINE_RESOLUTION_MS) {
    if (!(resolutionMs > 0)) throw new RangeError(`deadline wheel: resolution must be above 0 ms, got ${String(resolutionMs)}`);
  }

  /** Items held. */
  get size(): number {
    return this.count;
  }

  /** Watches `item`, due at time `at`; returns the ticket to delete it with. An item must not be added twice. */
  add(item: T, at: number): number {
    const slot = Math.ceil(at / this.resolutionMs);
    let set = slot === this.lastSlot ? this.lastSet : this.slots.get(slot);
    if (set === undefined) this.slots.set(slot, (set = new Set()));
    this.lastSlot = slot;
    this.lastSet = set;
    set.add(item);
    this.count++;
    if (slot < this.earliest) this.earliest = slot;
    return slot;
  }

  /** When an item added with `ticket` falls due: the end of its slot. */
  dueAt(ticket: number): number {
    return ticket * this.resolutionMs;
  }

  /** Stops watching `item`; false when it was not held (already expired or deleted). */
  delete(item: T, ticket: number): boolean {
    const set = this.slots.get(ticket);
    if (set === undefined || !set.delete(item)) return false;
    this.count--;
    if (set.size === 0) {
      this.forget(ticket);
      if (ticket === this.earliest) this.stale = true;
    }
    return true;
  }

  /** When the earliest item falls due (the end of its slot); undefined when none is held. */
  get nextAt(): number | undefined {
    if (this.stale) this.findEarliest();
    return this.count === 0 ? undefined : this.earliest * this.resolutionMs;
  }

  /** Removes and returns every item due at `now`, earliest slot first, in the order added within a slot. */
  expire(now: number): T[] {
    const due: T[] = [];
    if (this.count === 0) return due;
    if (this.stale) this.findEarliest();
    const last = Math.floor(now / this.resolutionMs);
    if (this.earliest > last) return due;
    const slots: number[] = [];
    for (const slot of this.slots.keys()) if (slot <= last) slots.push(slot);
    slots.sort((a, b) => a - b);
    for (const slot of slots) {
      const set = this.slots.get(slot)!;
      for (const item of set) due.push(item);
      this.count -= set.size;
      this.forget(slot);
    }
    this.findEarliest();
    return due;
  }

  /** Forgets every item. */
  clear(): void {
    this.slots.clear();
    this.count = 0;
    this.earliest = Infinity;
    this.stale = false;
    this.lastSlot = Number.NaN;
    this.lastSet = undefined;
  }

  private forget(slot: number): void {
    this.slots.delete(slot);
    if (slot === this.lastSlot) {
      this.lastSlot = Number.NaN;
      this.lastSet = undefined;
    }
  }

  private findEarliest(): void {
    let min = Infinity;
    for (const slot of this.slots.keys()) if (slot < min) min = slot;
    this.earliest = min;
    this.stale = false;
  }
}
