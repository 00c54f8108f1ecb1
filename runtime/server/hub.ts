import type { Broker, BrokerEvent, BrokerGap } from "../broker/broker.js";
import type { ChannelDef } from "../service/define.js";
import type { Member } from "../wire/envelope.js";
import { encodeEnvelope } from "../wire/encode.js";
import { conflationKey } from "./conflation.js";

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
}

/**
 * Local channel membership of one server node. The node subscribes to a channel upstream
 * when its first local member joins and unsubscribes when the last one leaves. Each event
 * and each presence change is encoded once and the same bytes go to every member.
 */
export class ChannelHub {
  private readonly channels = new Map<string, LocalChannel>();

  constructor(private readonly broker: Broker) {}

  size(channel: string): number {
    return this.channels.get(channel)?.members.size ?? 0;
  }

  members(channel: string): Member[] {
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

  /** Adds a member; resolves once the node receives the channel's events. */
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
      c = { def, members, upstream };
      this.channels.set(channel, c);
    }
    if (def.rules.presence && !c.members.has(member)) {
      this.sendPresence(c, channel, [member.member], []);
    }
    c.members.add(member);
    await c.upstream;
  }

  leave(channel: string, member: HubMember): void {
    const c = this.channels.get(channel);
    if (c === undefined || !c.members.delete(member)) return;
    if (c.def.rules.presence) this.sendPresence(c, channel, [], [member.member]);
    if (c.members.size === 0) {
      this.channels.delete(channel);
      void c.upstream.then((stop) => stop()).catch(() => undefined);
    }
  }

  private fanOut(def: ChannelDef, event: BrokerEvent, members: Set<HubMember>): void {
    if (members.size === 0) return;
    const frame = encodeEnvelope({
      seq: 0,
      ackSeq: 0,
      frame: { case: "event", value: { channel: event.channel, epoch: event.epoch, offset: event.offset, payload: event.payload } },
    });
    const key = conflationKey(def, event.payload);
    for (const m of members) m.deliver(event.channel, frame, event.offset, key);
  }

  private sendPresence(c: LocalChannel, channel: string, joined: Member[], left: Member[]): void {
    if (c.members.size === 0) return;
    const frame = encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "presence", value: { channel, joined, left } } });
    for (const m of c.members) m.deliver(channel, frame, 0, "");
  }

  async close(): Promise<void> {
    const all = Array.from(this.channels.values());
    this.channels.clear();
    await Promise.all(all.map((c) => c.upstream.then((stop) => stop()).catch(() => undefined)));
  }
}
