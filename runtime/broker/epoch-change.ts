import type { BrokerPosition } from "./broker.js";

/**
 * What a subscriber lost when its channel moved to a new epoch (the broker lost the channel's
 * history: a Redis restarted without persistence, a JetStream stream recreated).
 *
 * A broker remembers, with the new epoch, the epoch before it and the last offset of that epoch
 * any node is known to have published or received ("previous"). Against a subscriber's
 * position `since` that gives three answers (PROTOCOL.md 6.4):
 *
 *   previous = (since.epoch, p), p > since.offset   offsets since.offset+1..p of the old epoch are
 *                                                   lost ("epoch_changed" in the old epoch), then
 *                                                   the new epoch starts ("epoch_reset")
 *   previous = (since.epoch, p), p <= since.offset  nothing of the old epoch is known lost:
 *                                                   "epoch_reset"
 *   otherwise                                       how much of the old epoch was lost is not
 *                                                   known: "epoch_changed"
 *
 * The new epoch's part always runs from 0 to the offset before its first event still in
 * history (usually 0: nothing of the new epoch is missing).
 */
export const EPOCH_CHANGED = "epoch_changed";
export const EPOCH_RESET = "epoch_reset";

export interface EpochGap {
  readonly epoch: string;
  readonly fromOffset: number;
  readonly toOffset: number;
  readonly reason: string;
}

/**
 * The reason of a new epoch's gap for a subscriber at `since`, on its own: "epoch_reset" only
 * when nothing of the old epoch past `since` is known (epochChangeGaps also names what is).
 */
export function epochChangeReason(since: BrokerPosition, previous: BrokerPosition | undefined): string {
  return previous !== undefined && previous.epoch === since.epoch && previous.offset <= since.offset ? EPOCH_RESET : EPOCH_CHANGED;
}

/**
 * The gaps to report, in order, for a subscriber at `since` when the channel is now in `epoch`
 * and its history starts after `toOffset`. `seen` is the highest offset of since.epoch the
 * subscriber knows of without having it (events it held back); it counts as known like
 * `previous`.
 */
export function epochChangeGaps(since: BrokerPosition, epoch: string, toOffset: number, previous: BrokerPosition | undefined, seen = 0): EpochGap[] {
  const known = previous !== undefined && previous.epoch === since.epoch ? previous.offset : undefined;
  const top = Math.max(known ?? 0, seen);
  // Past what is known of the old epoch, nothing is known lost only if the broker remembers it.
  const reset: EpochGap = { epoch, fromOffset: 0, toOffset, reason: known !== undefined ? EPOCH_RESET : EPOCH_CHANGED };
  if (since.epoch === "" || top <= since.offset) return [reset];
  return [{ epoch: since.epoch, fromOffset: since.offset + 1, toOffset: top, reason: EPOCH_CHANGED }, reset];
}
