import { encodeEnvelope } from "../wire/encode.js";
import type { Member, Subscribed } from "../wire/envelope.js";

/*
 * Sizes of the answers the server builds, so that none exceeds the envelope limit it
 * announced in Welcome (PROTOCOL.md 2.7): a member list that does not fit one Subscribed
 * continues in Presence frames, and a confirmed Publish is answered with its position.
 */

const utf8 = new TextEncoder();

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function stringField(s: string): number {
  if (s === "") return 0;
  const n = utf8.encode(s).length;
  return 1 + varintSize(n) + n;
}

/** Bytes one entry of a repeated Member field takes: its tag, its length and the Member. */
function memberSize(m: Member): number {
  const inner = stringField(m.clientId) + stringField(m.principal);
  return 1 + varintSize(inner) + inner;
}

/**
 * Splits a Subscribed's member list: `members` fit in the Subscribed itself, `rest` holds the
 * `joined` lists of the Presence frames that follow it, each of which fits as well.
 */
export function splitMembers(value: Subscribed, maxEnvelopeBytes: number): { members: Member[]; rest: Member[][] } {
  // The envelope without members, with the largest seq and ack_seq a session can reach, and 4
  // bytes for the frame's length prefix growing as members are added.
  const widest = 2 ** 53 - 1;
  const base = encodeEnvelope({ seq: widest, ackSeq: widest, frame: { case: "subscribed", value: { ...value, members: [] } } }).byteLength + 4;
  const all = value.members;
  let used = base;
  let i = 0;
  while (i < all.length && used + memberSize(all[i]!) <= maxEnvelopeBytes) used += memberSize(all[i++]!);
  if (i === all.length) return { members: all, rest: [] };
  const members = all.slice(0, i);
  const rest: Member[][] = [];
  const presenceBase = encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "presence", value: { channel: value.channel, joined: [], left: [] } } }).byteLength + 4;
  while (i < all.length) {
    const joined: Member[] = [all[i++]!];
    used = presenceBase + memberSize(joined[0]!);
    while (i < all.length && used + memberSize(all[i]!) <= maxEnvelopeBytes) {
      used += memberSize(all[i]!);
      joined.push(all[i++]!);
    }
    rest.push(joined);
  }
  return { members, rest };
}

/** The payload of the Reply to a confirmed Publish: protocast.v1.ChannelPosition. */
export function encodeChannelPosition(p: { readonly channel: string; readonly epoch: string; readonly offset: number }): Uint8Array {
  const channel = utf8.encode(p.channel);
  const epoch = utf8.encode(p.epoch);
  const out: number[] = [];
  const varint = (n: number): void => {
    while (n >= 0x80) {
      out.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
  };
  const bytes = (tag: number, b: Uint8Array): void => {
    if (b.length === 0) return;
    out.push(tag);
    varint(b.length);
    for (const x of b) out.push(x);
  };
  bytes(0x0a, channel);
  bytes(0x12, epoch);
  if (p.offset !== 0) {
    out.push(0x18);
    varint(p.offset);
  }
  return Uint8Array.from(out);
}
