import { epochChangeGaps } from "../broker/epoch-change.js";
import { Code } from "../errors/code.js";
import { CloseCode } from "../errors/close-codes.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { ChannelDef } from "../service/define.js";
import type { Outcome } from "../session/idempotency-window.js";
import { encodeEnvelope } from "../wire/encode.js";
import type { Frame, Member, Publish, Subscribe, Unsubscribe } from "../wire/envelope.js";
import { encodeChannelPosition, splitMembers } from "./answer-size.js";
import { LEASE_MARGIN_MS, authorized, checkKey, idempotencyScope, toErrorOutcome } from "./call-outcome.js";
import type { Principal } from "./context.js";
import { bump } from "./counters.js";
import type { HubMember } from "./hub.js";
import { hasScope } from "./scopes.js";
import type { SessionHost, SessionLink } from "./session-host.js";
import { NO_METADATA, metadataView } from "../wire/metadata.js";

/** Events read from history per request while recovering a subscription. */
const HISTORY_PAGE = 500;

/** Live channel frames held for one subscription during a re-sync before the client is cut off. */
const MAX_HELD_FRAMES = 10_000;

/** What the channels of a session need of the server. */
export type ChannelHost = Pick<
  SessionHost<unknown>,
  "lookup" | "hub" | "broker" | "limits" | "counters" | "authorize" | "publishHookFor" | "publishBytes" | "dedupe" | "tracing"
>;

/** What the channels of a session need of the session. */
export interface ChannelOwner {
  readonly id: string;
  readonly principal: Principal;
  readonly member: Member;
  /** The connection, while attached. */
  readonly conn: SessionLink | undefined;
  /** The node the session was handed to, once it was. */
  readonly movedTo: string | undefined;
  sendSequenced(frame: Frame): void;
  sendError(id: number, e: unknown, sequenced: boolean): void;
  /** With a session store: resolves once every frame numbered so far is stored. */
  whenStored(): Promise<void> | undefined;
}

/** A channel position the client acknowledged (Ack.channels). */
export interface ChannelAck {
  readonly channel: string;
  readonly epoch: string;
  readonly offset: number;
}

interface Sub {
  readonly def: ChannelDef;
  readonly member: HubMember;
  /** While true, live frames are held until the Subscribed answer and replay are out. */
  holding: boolean;
  held: { frame: Uint8Array; offset: number }[];
  /** Epoch and highest offset the client acknowledged; a resume replays from there. */
  epoch: string;
  ackedOffset: number;
  /** Whether this node's hub has the member: false for a subscription restored from a snapshot until its re-sync joins it. */
  joined: boolean;
}

/** A subscription as a snapshot keeps it: channel, method path, epoch, acknowledged offset. */
export type SubRecord = [string, string, string, number];

/**
 * The channels of one session: subscribe and unsubscribe, re-syncs after a resume or a
 * handover (history first, then the live events held meanwhile), client publishes, acks of
 * channel positions and kicks.
 */
export class SessionChannels {
  private readonly subs = new Map<string, Sub>();
  /** The sync running or queued last per channel; syncs of one channel never overlap. */
  private readonly syncing = new Map<string, Promise<void>>();

  constructor(
    private readonly host: ChannelHost,
    private readonly owner: ChannelOwner,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  has(channel: string): boolean {
    return this.subs.has(channel);
  }

  /** Every subscription, for a snapshot or a store write. */
  records(): SubRecord[] {
    return Array.from(this.subs, ([channel, sub]): SubRecord => [channel, sub.def.path, sub.epoch, sub.ackedOffset]);
  }

  /** Subscriptions from a snapshot; those naming a channel this node does not serve are dropped. */
  restore(records: Iterable<SubRecord>): void {
    for (const [channel, path, epoch, ackedOffset] of records) {
      const def = this.host.lookup(path);
      if (def === undefined || def.kind !== "channel" || def.parse(channel) === undefined) continue;
      const sub = this.newSub(def);
      sub.epoch = epoch;
      sub.ackedOffset = ackedOffset;
      this.subs.set(channel, sub);
    }
  }

  /**
   * A restored subscription whose Subscribe was still unanswered when the snapshot was taken
   * has no position of its own yet: it starts from the one that Subscribe asked to recover
   * from, so that its re-sync recovers rather than starting at the channel's end.
   */
  startAt(channel: string, epoch: string, offset: number): void {
    const sub = this.subs.get(channel);
    if (sub === undefined || sub.epoch !== "") return;
    sub.epoch = epoch;
    sub.ackedOffset = offset;
  }

  /** The session went to another node: it leaves here without a leave event. */
  movedTo(node: string): void {
    for (const [channel, sub] of Array.from(this.subs)) {
      this.subs.delete(channel);
      this.host.hub.leave(channel, sub.member, node);
    }
  }

  /**
   * The session lost its connection. Until the re-sync that follows a resume, live events are
   * held back, so that they never overtake the events replayed from history.
   */
  detached(): void {
    for (const sub of this.subs.values()) {
      sub.holding = true;
      sub.held = [];
    }
  }

  /** The session ended: it leaves every channel (leave events go out). */
  end(): void {
    for (const channel of Array.from(this.subs.keys())) this.leave(channel);
  }

  /**
   * After a resume, a handover or a restore from the store, once attached: re-syncs every
   * subscription from the position the client acknowledged, first joining this node's hub with
   * those restored from a snapshot. A subscription stays unjoined until then, however many
   * connections came and went before one stayed long enough to resume (a client that left while
   * its session was being adopted leaves it detached here, unjoined).
   */
  resyncAll(): void {
    for (const [channel, sub] of this.subs) {
      const reliable = sub.def.rules.delivery !== "at-most-once";
      this.enqueueSync(channel, async () => {
        if (!sub.joined) {
          try {
            await this.host.hub.join(sub.def, channel, sub.member);
          } catch {
            this.leave(channel);
            this.owner.sendSequenced({ case: "unsubscribed", value: { id: 0, channel, code: Code.Unavailable, reason: "resubscribe_failed" } });
            return;
          }
          if (this.subs.get(channel) !== sub) {
            // Left while joining: take back the join that leave() could not.
            this.host.hub.leave(channel, sub.member);
            return;
          }
          sub.joined = true;
        }
        await this.sync(sub, channel, 0, reliable, sub.epoch, sub.ackedOffset);
      });
    }
  }

  /** A Subscribe: queued behind any sync of the same channel. */
  subscribe(s: Subscribe): void {
    this.enqueueSync(s.channel, () => this.onSubscribe(s));
  }

  unsubscribe(u: Unsubscribe): void {
    this.leave(u.channel);
    this.owner.sendSequenced({ case: "unsubscribed", value: { id: u.id, channel: u.channel, code: 0, reason: "" } });
  }

  /** Channel positions the client acknowledged: a resume or a node taking over replays from there. */
  acked(positions: readonly ChannelAck[]): void {
    for (const p of positions) {
      const sub = this.subs.get(p.channel);
      if (sub === undefined) continue;
      if (p.epoch !== sub.epoch) {
        sub.epoch = p.epoch;
        sub.ackedOffset = p.offset;
      } else if (p.offset > sub.ackedOffset) sub.ackedOffset = p.offset;
    }
  }

  /** Removes the session from a channel at once and tells the client why. */
  kick(channel: string, reason: string): boolean {
    if (!this.subs.has(channel)) return false;
    this.leave(channel);
    this.owner.sendSequenced({ case: "unsubscribed", value: { id: 0, channel, code: Code.PermissionDenied, reason } });
    return true;
  }

  /** A refreshed credential: what the old one allowed, the new one may not. */
  async recheck(next: Principal): Promise<void> {
    for (const [channel, sub] of Array.from(this.subs)) {
      const allowed =
        hasScope(next, sub.def.rules.readScope) &&
        (await authorized(this.host.authorize, { principal: next, action: "subscribe", method: sub.def.path, channel, params: sub.def.parse(channel), metadata: NO_METADATA }));
      if (!allowed) this.kick(channel, "scope_revoked");
    }
  }

  private async onSubscribe(s: Subscribe): Promise<void> {
    const host = this.host;
    const owner = this.owner;
    const def = host.lookup(s.method);
    let sub = this.subs.get(s.channel);
    try {
      if (def === undefined || def.kind !== "channel") throw new ProtocastError(Code.NotFound, `no channel method ${s.method}`, { reason: "unknown_method" });
      if (def.parse(s.channel) === undefined) {
        throw new ProtocastError(Code.InvalidArgument, `channel "${s.channel}" does not match pattern "${def.rules.pattern}"`, { reason: "bad_channel" });
      }
      if (!hasScope(owner.principal, def.rules.readScope)) {
        throw new ProtocastError(Code.PermissionDenied, `reading ${s.channel} needs scope "${def.rules.readScope}"`, { reason: "missing_scope" });
      }
      if (sub === undefined) {
        const l = host.limits;
        if (this.subs.size >= l.maxSubscriptionsPerConnection) {
          bump(host.counters.limitHits, "max_subscriptions");
          throw new ProtocastError(Code.ResourceExhausted, `a session may hold at most ${l.maxSubscriptionsPerConnection} subscriptions`, { reason: "max_subscriptions" });
        }
        const maxMembers = def.rules.maxMembers || l.maxMembers;
        if (host.hub.size(s.channel) >= maxMembers) {
          bump(host.counters.limitHits, "channel_full");
          throw new ProtocastError(Code.ResourceExhausted, `channel ${s.channel} is full (${maxMembers} members)`, { reason: "channel_full" });
        }
      }
      const params = def.parse(s.channel);
      if (!(await authorized(host.authorize, { principal: owner.principal, action: "subscribe", method: s.method, channel: s.channel, params, metadata: NO_METADATA }))) {
        throw new ProtocastError(Code.PermissionDenied, `not allowed to read ${s.channel}`);
      }
      sub = this.subs.get(s.channel);
    } catch (e) {
      owner.sendError(s.id, e, true);
      return;
    }
    if (owner.movedTo !== undefined) {
      // The session went to another node while this was checked; that node does not know of
      // the request. The answer reaches the client through it (forwarded).
      owner.sendError(s.id, new ProtocastError(Code.Unavailable, "the session moved to another node while subscribing; subscribe again", { reason: "node_lost" }), true);
      return;
    }
    if (sub === undefined) {
      sub = this.newSub(def);
      this.subs.set(s.channel, sub);
    }
    const current = sub;
    // The position to recover from belongs to the subscription from now on: should the session
    // move or be stored before the answer is out, its next node re-syncs from there rather than
    // from the channel's end.
    if (s.recover && s.epoch !== "" && current.epoch === "") {
      current.epoch = s.epoch;
      current.ackedOffset = s.offset;
    }
    try {
      await host.hub.join(def, s.channel, current.member);
      if (this.subs.get(s.channel) !== current) {
        // Left, or moved with the session, while joining: take back the join.
        host.hub.leave(s.channel, current.member, owner.movedTo);
        return;
      }
      current.joined = true;
      await this.sync(current, s.channel, s.id, s.recover, s.epoch, s.offset);
    } catch (e) {
      this.leave(s.channel);
      owner.sendError(s.id, e, true);
    }
  }

  private newSub(def: ChannelDef): Sub {
    const owner = this.owner;
    const created: Sub = {
      def,
      holding: true,
      held: [],
      epoch: "",
      ackedOffset: 0,
      joined: false,
      member: {
        member: owner.member,
        deliver: (channel, frame, offset, key) => {
          // While detached, events are not buffered per session: history serves them.
          const conn = owner.conn;
          if (conn === undefined) return;
          if (!created.holding) conn.sendChannelFrame(frame, channel, key, def.rules.overflow);
          else if (created.held.length < MAX_HELD_FRAMES) created.held.push({ frame, offset });
          else conn.close(CloseCode.SlowConsumer, "channel re-sync fell too far behind");
        },
        gap: (gap) => {
          const conn = owner.conn;
          if (conn === undefined || created.def.rules.delivery === "at-most-once") return;
          const { fromOffset, toOffset, reason } = gap;
          this.sendSubscribed(created, gap.channel, 0, gap.epoch, toOffset, true, { fromOffset, toOffset, reason });
          const stored = owner.whenStored();
          if (stored === undefined || created.holding) return;
          // Events after the gap wait for its notice to go out first. Should the connection go
          // meanwhile, they stay held for the re-sync that follows the resume (see sync()).
          created.holding = true;
          void stored.then(() => {
            if (this.subs.get(gap.channel) !== created || !created.holding || owner.conn !== conn) return;
            for (const h of created.held) conn.sendBytes(h.frame);
            created.held = [];
            created.holding = false;
          });
        },
      },
    };
    return created;
  }

  /**
   * Answers a subscribe (or re-syncs after a resume, with id 0): Subscribed with the channel's
   * position, then the missed events from history when `recover` is set, then the live events
   * held meanwhile that come after them. Live events never overtake replayed ones.
   */
  private async sync(sub: Sub, channel: string, id: number, recover: boolean, epoch: string, offset: number): Promise<void> {
    sub.holding = true;
    const owner = this.owner;
    const broker = this.host.broker;
    // A sync serves one connection. When that connection goes while the sync waits on the
    // broker, the sync stops where it is: it sends nothing more and leaves the live events held,
    // for the re-sync that follows the resume. Going on would replay onto the next connection
    // ahead of that re-sync's Subscribed, and release live events past offsets that arrived
    // while detached and were never held: a hole the client can only report as a gap.
    const conn = owner.conn;
    if (conn === undefined) return;
    const gone = (): boolean => this.subs.get(channel) !== sub || owner.conn !== conn;
    let cut: number;
    // An empty epoch means the client has no position: nothing to recover (PROTOCOL.md 6.4).
    if (recover && epoch !== "") {
      const page = HISTORY_PAGE;
      let hist = await broker.history(channel, { epoch, offset }, page);
      if (gone()) return;
      if (hist.position.epoch === epoch && offset > hist.position.offset) {
        // A position past the channel's end: the history it came from is gone. Ask as if from
        // another epoch, which answers with an epoch_changed gap and what this epoch holds.
        hist = await broker.history(channel, { epoch: `${epoch}\u0000stale`, offset: 0 }, page);
      }
      if (gone()) return;
      let answer = id;
      if (hist.gap !== undefined && hist.position.epoch !== epoch) {
        // A new epoch. When the broker knows the old one went past the client's position,
        // those offsets are reported first, in the old epoch; the new epoch's gap follows as
        // a re-sync (PROTOCOL.md 6.4).
        const gaps = epochChangeGaps({ epoch, offset }, hist.position.epoch, hist.gap.toOffset, hist.previous);
        if (gaps.length > 1) {
          const { fromOffset, toOffset, reason } = gaps[0]!;
          this.sendSubscribed(sub, channel, answer, epoch, toOffset, true, { fromOffset, toOffset, reason });
          answer = 0;
        }
        const { fromOffset, toOffset, reason } = gaps.at(-1)!;
        hist = { ...hist, gap: { fromOffset, toOffset, reason } };
      }
      // The next event after Subscribed has offset + 1: the client's own position when all
      // it missed follows, the end of the gap otherwise (PROTOCOL.md 6.4).
      const from = hist.gap !== undefined ? hist.gap.toOffset : Math.min(offset, hist.position.offset);
      this.sendSubscribed(sub, channel, answer, hist.position.epoch, from, true, hist.gap);
      // With a store, Subscribed waits for it; the replayed events must not overtake it.
      sub.epoch = hist.position.epoch;
      sub.ackedOffset = hist.gap === undefined ? offset : (hist.events[0]?.offset ?? hist.position.offset + 1) - 1;
      const stored = owner.whenStored();
      if (stored !== undefined) await stored;
      if (gone()) return;
      cut = hist.position.offset;
      // Page through history until the position read first; live events after it are held.
      for (;;) {
        for (const ev of hist.events) {
          // Events carry no ack_seq: their bytes are the same for every subscriber.
          const value = { channel, epoch: ev.epoch, offset: ev.offset, payload: ev.payload, metadata: ev.metadata };
          conn.sendBytes(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "event", value } }));
        }
        const last = hist.events.at(-1);
        if (last === undefined || last.offset >= cut || hist.events.length < page) break;
        hist = await broker.history(channel, { epoch: last.epoch, offset: last.offset }, page);
        if (gone()) return;
      }
      cut = Math.max(cut, hist.events.at(-1)?.offset ?? 0);
    } else {
      const pos = await broker.position(channel);
      if (gone()) return;
      this.sendSubscribed(sub, channel, id, pos.epoch, pos.offset, false, undefined);
      sub.epoch = pos.epoch;
      sub.ackedOffset = pos.offset;
      cut = pos.offset;
      const stored = owner.whenStored();
      if (stored !== undefined) await stored;
      if (gone()) return;
    }
    for (const h of sub.held) if (h.offset === 0 || h.offset > cut) conn.sendBytes(h.frame);
    sub.held = [];
    sub.holding = false;
  }

  private enqueueSync(channel: string, task: () => Promise<void>): void {
    // Syncs of one channel run one after another: two replays must not interleave, or live
    // events could overtake replayed ones.
    const prev = this.syncing.get(channel) ?? Promise.resolve();
    const next = prev.then(task).catch(() => undefined);
    this.syncing.set(channel, next);
    void next.finally(() => {
      if (this.syncing.get(channel) === next) this.syncing.delete(channel);
    });
  }

  private sendSubscribed(
    sub: Sub,
    channel: string,
    id: number,
    epoch: string,
    offset: number,
    recover: boolean,
    gap: { fromOffset: number; toOffset: number; reason: string } | undefined,
  ): void {
    const owner = this.owner;
    const all = sub.def.rules.presence ? this.host.hub.members(channel) : [];
    const value = { id, channel, epoch, offset, recovered: recover && gap === undefined, gap: recover ? gap : undefined, members: all };
    // A member list that does not fit one envelope continues in Presence frames (joined only)
    // right behind the Subscribed, before any Event (PROTOCOL.md 6.9).
    const { members, rest } = splitMembers(value, this.host.limits.maxEnvelopeBytes);
    owner.sendSequenced({ case: "subscribed", value: { ...value, members } });
    if (rest.length === 0) return;
    const send = (): void => {
      for (const joined of rest) owner.conn?.sendBytes(encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "presence", value: { channel, joined, left: [] } } }));
    };
    const stored = owner.whenStored();
    if (stored === undefined) send();
    else void stored.then(send);
  }

  private leave(channel: string): void {
    const sub = this.subs.get(channel);
    if (sub === undefined) return;
    this.subs.delete(channel);
    this.host.hub.leave(channel, sub.member);
  }

  /** A client publish: checked, passed through the publish hook, published, answered with where it landed. */
  async publish(p: Publish): Promise<void> {
    const host = this.host;
    const owner = this.owner;
    try {
      const def = host.lookup(p.method);
      if (def === undefined || def.kind !== "channel") throw new ProtocastError(Code.NotFound, `no channel method ${p.method}`, { reason: "unknown_method" });
      if (!def.rules.clientPublish) throw new ProtocastError(Code.PermissionDenied, `clients may not publish to ${def.rules.pattern}`, { reason: "client_publish_disabled" });
      const params = def.parse(p.channel);
      if (params === undefined) throw new ProtocastError(Code.InvalidArgument, `channel "${p.channel}" does not match pattern "${def.rules.pattern}"`, { reason: "bad_channel" });
      if (!hasScope(owner.principal, def.rules.publishScope)) {
        throw new ProtocastError(Code.PermissionDenied, `publishing to ${p.channel} needs scope "${def.rules.publishScope}"`, { reason: "missing_scope" });
      }
      const metadata = metadataView(p.metadata);
      if (!(await authorized(host.authorize, { principal: owner.principal, action: "publish", method: p.method, channel: p.channel, params, metadata }))) {
        throw new ProtocastError(Code.PermissionDenied, `not allowed to publish to ${p.channel}`);
      }
      const dedupe = def.rules.delivery === "exactly-once";
      const keyProblem = checkKey(p.idempotencyKey, dedupe);
      if (keyProblem !== undefined) throw keyProblem;
      let message: unknown;
      try {
        message = def.messageCodec.decode(p.payload);
      } catch (e) {
        throw new ProtocastError(Code.InvalidArgument, `message for ${p.channel} does not decode: ${String(e)}`, { reason: "bad_payload" });
      }
      const run = async (): Promise<Uint8Array> => {
        let payload = p.payload;
        const hook = host.publishHookFor(p.method);
        if (hook !== undefined) {
          const replaced = await hook(params, message, { principal: owner.principal, sessionId: owner.id, channel: p.channel, metadata });
          if (replaced !== undefined) payload = def.messageCodec.encode(replaced as never);
        }
        // The Reply names where the event landed (PROTOCOL.md 3.4, Reply).
        // The client's metadata goes on with the event; it was checked on arrival.
        const remote = host.tracing === undefined || metadata === NO_METADATA ? undefined : { remote: metadata };
        return encodeChannelPosition(await host.publishBytes(def, p.channel, payload, metadata === NO_METADATA ? undefined : metadata, true, remote));
      };
      const target = `${p.method} ${p.channel}`;
      const outcome = dedupe
        ? await host.dedupe(idempotencyScope(owner.principal, owner.id), p.idempotencyKey, target, p.payload, run, undefined, host.limits.maxCallTimeoutMs + LEASE_MARGIN_MS)
        : await run().then(
            (payload): Outcome => ({ kind: "reply", payload }),
            (e: unknown): Outcome => toErrorOutcome(e),
          );
      if (p.id === 0) return;
      if (outcome.kind === "reply") owner.sendSequenced({ case: "reply", value: { id: p.id, payload: outcome.payload } });
      else owner.sendSequenced({ case: "error", value: { id: p.id, code: outcome.code, message: outcome.message, reason: outcome.reason, retryAfterMs: 0 } });
    } catch (e) {
      if (p.id !== 0) owner.sendError(p.id, e, true);
    }
  }
}
