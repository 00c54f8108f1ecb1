import type { Broker, BrokerEvent, BrokerGap } from "../broker/broker.js";
import type { ChannelDef } from "../service/define.js";
import type { Member } from "../wire/envelope.js";
import { encodeEnvelope } from "../wire/encode.js";
import type { Tracing } from "../session/tracing.js";
import { deliveryMetadata } from "./traced-delivery.js";
import type { PresenceMessage } from "./cluster.js";
import { conflationKey } from "./conflation.js";

/** What the hub needs from the cluster to keep presence across nodes. */
export interface PresenceLink {
  readonly nodeId: string;
  watchPresence(channel: string): Promise<() => void>;
  announce(channel: string, message: PresenceMessage): void;
  requestSnapshot(channel: string): Promise<void>;
}

/** What the hub needs from a connection that subscribed to a channel. */
export interface HubMember {
  readonly member: Member;
  /**
   * Receives an encoded frame shared by every member; it must not be modified. `key` is the
   * event's conflation key ("" when the channel has none); presence frames have offset 0.
   */
  deliver(channel: string, frame: Uint8Array, offset: number, key: string): void;
  /** Events of the channel that will never arrive; the member tells its client. */
  gap(gap: BrokerGap): void;
}

interface LocalChannel {
  readonly def: ChannelDef;
  readonly members: Set<HubMember>;
  /** Resolves to the function that ends the node's broker subscription. */
  readonly upstream: Promise<() => void>;
  /** Members on other nodes, by client id (presence channels in a cluster). */
  readonly remote: Map<string, { member: Member; node: string }>;
  /** Resolves once the other nodes' members are known, to the end of the presence feed. */
  presence: Promise<(() => void) | undefined>;
  /** True until the first snapshot is in: what it brings is not news to anyone. */
  filling: boolean;
}

const NONE: Promise<undefined> = Promise.resolve(undefined);

/**
 * Local channel membership of one server node. The node subscribes to a channel upstream
 * when its first local member joins and unsubscribes when the last one leaves. Each event
 * and each presence change is encoded once and the same bytes go to every member.
 */
export class ChannelHub {
  private readonly channels = new Map<string, LocalChannel>();
  /** Set when the node shares its broker with other nodes. */
  link: PresenceLink | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly tracing?: Tracing,
  ) {}

  /** Members of a channel, on every node (remote ones only for presence channels). */
  size(channel: string): number {
    const c = this.channels.get(channel);
    return c === undefined ? 0 : c.members.size + c.remote.size;
  }

  /** Whether this node has members in a channel. */
  serves(channel: string): boolean {
    return this.channels.has(channel);
  }

  members(channel: string): Member[] {
    const c = this.channels.get(channel);
    if (c === undefined) return [];
    const out = Array.from(c.members, (m) => m.member);
    for (const r of c.remote.values()) out.push(r.member);
    return out;
  }

  localMembers(channel: string): Member[] {
    const c = this.channels.get(channel);
    return c === undefined ? [] : Array.from(c.members, (m) => m.member);
  }

  /** Local channels and their members, optionally only those of one channel method. */
  census(def?: ChannelDef): { channel: string; def: ChannelDef; members: Member[] }[] {
    const out = [];
    for (const [channel, c] of this.channels) {
      if (def !== undefined && c.def.path !== def.path) continue;
      out.push({ channel, def: c.def, members: Array.from(c.members, (m) => m.member) });
    }
    return out;
  }

  /**
   * Adds a member; resolves once the node receives the channel's events (and, for a presence
   * channel in a cluster, knows the members on other nodes). A member that moved here from
   * another node is no news: nobody hears it join again.
   */
  async join(def: ChannelDef, channel: string, member: HubMember): Promise<void> {
    let c = this.channels.get(channel);
    if (c === undefined) {
      const members = new Set<HubMember>();
      const upstream = this.broker.subscribe(
        channel,
        (event) => this.fanOut(def, event, members),
        (gap) => {
          for (const m of members) m.gap(gap);
        },
      );
      const created: LocalChannel = { def, members, upstream, remote: new Map(), presence: NONE, filling: false };
      const link = this.link;
      if (def.rules.presence && link !== undefined) {
        created.filling = true;
        created.presence = (async () => {
          const stop = await link.watchPresence(channel);
          await link.requestSnapshot(channel);
          created.filling = false;
          return stop;
        })();
        created.presence.catch(() => undefined);
      }
      c = created;
      this.channels.set(channel, c);
    }
    if (def.rules.presence && !c.members.has(member)) {
      const id = member.member.clientId;
      if (!c.remote.delete(id)) this.sendPresence(c, channel, [member.member], []);
      this.link?.announce(channel, { t: "j", n: this.link.nodeId, m: [member.member] });
    }
    c.members.add(member);
    await c.upstream;
    await c.presence;
  }

  /**
   * Removes a member. With `movedTo`, the member's session went to that node: the others
   * learn of it from there, and nobody hears it leave.
   */
  leave(channel: string, member: HubMember, movedTo?: string): void {
    const c = this.channels.get(channel);
    if (c === undefined || !c.members.delete(member)) return;
    if (c.def.rules.presence) {
      if (movedTo !== undefined) c.remote.set(member.member.clientId, { member: member.member, node: movedTo });
      else {
        this.sendPresence(c, channel, [], [member.member]);
        this.link?.announce(channel, { t: "l", n: this.link.nodeId, c: [member.member.clientId] });
      }
    }
    if (c.members.size === 0) {
      this.channels.delete(channel);
      void c.upstream.then((stop) => stop()).catch(() => undefined);
      void c.presence.then((stop) => stop?.()).catch(() => undefined);
    }
  }

  /** Presence news of a channel from another node. */
  onPresence(channel: string, m: PresenceMessage): void {
    const c = this.channels.get(channel);
    if (c === undefined || !c.def.rules.presence) return;
    const joined: Member[] = [];
    const left: Member[] = [];
    const local = (id: string): boolean => {
      for (const x of c.members) if (x.member.clientId === id) return true;
      return false;
    };
    const add = (member: Member): void => {
      const had = c.remote.get(member.clientId);
      // A member already known on another node keeps that node: it moved, and the node it
      // moved to speaks for it now.
      if (had !== undefined && m.t === "s" && had.node !== m.n) return;
      if (had === undefined && local(member.clientId)) return;
      c.remote.set(member.clientId, { member, node: m.n });
      if (had === undefined && !c.filling) joined.push(member);
    };
    switch (m.t) {
      case "j":
        for (const member of m.m) add(member);
        break;
      case "l":
        for (const id of m.c) {
          const had = c.remote.get(id);
          if (had === undefined || had.node !== m.n) continue;
          c.remote.delete(id);
          left.push(had.member);
        }
        break;
      case "s": {
        const ids = new Set(m.m.map((x) => x.clientId));
        for (const [id, r] of c.remote) {
          if (r.node !== m.n || ids.has(id)) continue;
          c.remote.delete(id);
          left.push(r.member);
        }
        for (const member of m.m) add(member);
        break;
      }
    }
    if (joined.length > 0 || left.length > 0) this.sendPresence(c, channel, joined, left);
  }

  /** Channels served here that keep presence. */
  presenceChannels(): string[] {
    const out: string[] = [];
    for (const [channel, c] of this.channels) if (c.def.rules.presence) out.push(channel);
    return out;
  }

  /** A node is gone: its members leave every channel here. */
  nodeGone(node: string): void {
    for (const [channel, c] of this.channels) {
      const left: Member[] = [];
      for (const [id, r] of c.remote) {
        if (r.node !== node) continue;
        c.remote.delete(id);
        left.push(r.member);
      }
      if (left.length > 0) this.sendPresence(c, channel, [], left);
    }
  }

  private fanOut(def: ChannelDef, event: BrokerEvent, members: Set<HubMember>): void {
    if (members.size === 0) return;
    // With tracing, an event that carries trace context is delivered inside a CONSUMER span,
    // whose context the subscribers receive in place of the publisher's.
    const traced = this.tracing === undefined || event.metadata === undefined ? undefined : deliveryMetadata(this.tracing, def, event);
    const frame = encodeEnvelope({
      seq: 0,
      ackSeq: 0,
      frame: { case: "event", value: { channel: event.channel, epoch: event.epoch, offset: event.offset, payload: event.payload, metadata: traced?.metadata ?? event.metadata } },
    });
    const key = conflationKey(def, event.payload);
    for (const m of members) m.deliver(event.channel, frame, event.offset, key);
    traced?.span.end();
  }

  private sendPresence(c: LocalChannel, channel: string, joined: Member[], left: Member[]): void {
    if (c.members.size === 0) return;
    const frame = encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "presence", value: { channel, joined, left } } });
    for (const m of c.members) m.deliver(channel, frame, 0, "");
  }

  async close(): Promise<void> {
    const all = Array.from(this.channels.values());
    this.channels.clear();
    await Promise.all(
      all.flatMap((c) => [c.upstream.then((stop) => stop()).catch(() => undefined), c.presence.then((stop) => stop?.()).catch(() => undefined)]),
    );
  }
}
