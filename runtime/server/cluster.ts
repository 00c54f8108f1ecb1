import type { Broker, BrokerEvent } from "../broker/broker.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { Member } from "../wire/envelope.js";
import { randomId } from "./ids.js";
import type { SessionSnapshot } from "../session/snapshot.js";

/**
 * How the nodes that share a broker know about each other. Everything travels through the
 * broker itself, so it works the same on the embedded broker (several cores in one process),
 * Redis and NATS, and needs no store of its own:
 *
 *   protocast.cluster          every node: heartbeats, principal counts, sync requests
 *   protocast.node/<id>        one node: handovers, forwarded frames, pushes, sync answers
 *   protocast.presence/<ch>    nodes serving <ch>: who joined and left there, snapshots
 *
 * A node that misses heartbeats for nodeTimeoutMs is dead: its principals stop counting and
 * its channel members leave. Control messages are small JSON documents.
 */
export interface ClusterOptions {
  /** This node's id: base64url characters, no dots. Default: random. */
  readonly nodeId?: string;
  /** How often a node says it is alive. Default 2000 ms. */
  readonly heartbeatMs?: number;
  /** Silence after which a node counts as dead. Default 6000 ms (three heartbeats). */
  readonly nodeTimeoutMs?: number;
  /** How long a handover or a presence snapshot waits for other nodes. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
}

const defaultClusterOptions = { heartbeatMs: 2_000, nodeTimeoutMs: 6_000, requestTimeoutMs: 2_000 } as const;

const CLUSTER_CHANNEL = "protocast.cluster";
const nodeChannel = (node: string): string => `protocast.node/${node}`;
const presenceChannel = (channel: string): string => `protocast.presence/${channel}`;

/** A session snapshot as it travels between nodes in JSON: its frames in base64. */
interface SnapshotOnWire extends Omit<SessionSnapshot, "frames"> {
  readonly frames: [number, string][];
}

function snapshotToWire(s: SessionSnapshot): SnapshotOnWire {
  return { ...s, frames: s.frames.map(([seq, bytes]): [number, string] => [seq, toBase64(bytes)]) };
}

function snapshotFromWire(w: SnapshotOnWire): SessionSnapshot {
  return { ...w, frames: w.frames.map(([seq, b64]) => [seq, fromBase64(b64)] as const) };
}

export interface TakeRequest {
  readonly sessionId: string;
  readonly token: string;
  readonly principal: string;
  readonly anonymous: boolean;
  readonly lastSeq: number;
}

/** A take's answer: the session, a refusal, or the node it moved on to (ask that one next). */
export type TakeResult =
  | { readonly kind: "taken"; readonly state: SessionSnapshot }
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "moved"; readonly node: string };
type TakeResultOnWire =
  | { readonly kind: "taken"; readonly state: SnapshotOnWire }
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "moved"; readonly node: string };

/** What the cluster needs from its server core. */
export interface ClusterHost {
  /** Local counts of a named principal: sessions (attached or in grace) and live connections. */
  localCounts(principal: string): { sessions: number; connections: number };
  /** Every named principal with local sessions or connections. */
  localPrincipals(): Iterable<string>;
  /** Hands a local session to another node, or says why not. */
  giveSession(request: TakeRequest, to: string): TakeResult | { readonly kind: "moved"; readonly node: string };
  /** A frame for a session that moved here, answered by its old node. */
  forwarded(sessionId: string, frame: Uint8Array): void;
  /** A push addressed to a principal with sessions on this node. */
  pushed(principal: string, method: string, payload: Uint8Array): void;
  /** A node stopped: its members leave every channel this node serves. */
  nodeGone(node: string): void;
  /** Removes local sessions from a channel, as another node asked. */
  kick(channel: string, principal: string | undefined, reason: string): void;
  /** Presence channels with members on this node. */
  presenceChannels(): string[];
  /** Presence traffic of a channel this node serves. */
  presence(channel: string, message: PresenceMessage): void;
  /** This node's members of a channel, for another node's snapshot. */
  localMembers(channel: string): Member[];
  error(e: unknown): void;
}

export type PresenceMessage =
  | { readonly t: "j"; readonly n: string; readonly m: Member[] }
  | { readonly t: "l"; readonly n: string; readonly c: string[] }
  | { readonly t: "s"; readonly n: string; readonly r: string; readonly m: Member[] };

type ClusterMessage =
  | { t: "hb"; n: string }
  | { t: "bye"; n: string }
  | { t: "sync"; n: string }
  | { t: "reg"; n: string; e: [string, number, number][] }
  | { t: "pq"; n: string; r: string; ch: string }
  | { t: "kick"; n: string; ch: string; p: string; why: string };

type NodeMessage =
  | { t: "reg"; n: string; e: [string, number, number][] }
  | { t: "sync"; n: string }
  | { t: "pm"; n: string; ch: string[] }
  // `m`: the asking node follows a move itself (answer "moved"); without it the request is
  // passed on to the node the session moved to, as nodes of earlier releases expect.
  | { t: "take"; n: string; r: string; q: TakeRequest; m?: 1 }
  | { t: "took"; n: string; r: string; x: TakeResultOnWire }
  | { t: "fwd"; n: string; s: string; f: string }
  | { t: "push"; n: string; p: string; m: string; b: string };

const NO_HISTORY = { historySize: 0, historyTtlMs: 0 };
/** Silent nodes remembered, in case they come back. */
const MAX_DEPARTED = 1_000;
/** Entries per registry message: big tables go in several. */
const REG_CHUNK = 2_000;

export class Cluster {
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly nodeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Other nodes heard from, with the time of their last message. */
  private readonly nodes = new Map<string, number>();
  /** Nodes counted dead after falling silent, oldest first. */
  private readonly departed = new Set<string>();
  /** Counts of named principals on other nodes: principal -> node -> [sessions, connections]. */
  private readonly remote = new Map<string, Map<string, [number, number]>>();
  private readonly dirty = new Set<string>();
  private flushQueued = false;
  private readonly takes = new Map<string, (r: TakeResult) => void>();
  private readonly snapshots = new Map<string, { channel: string; pending: Set<string>; done: () => void }>();
  private readonly stops: Promise<() => void>[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;
  readonly ready: Promise<void>;

  constructor(
    private readonly broker: Broker,
    private readonly host: ClusterHost,
    options: ClusterOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.nodeId = options.nodeId ?? randomId(9);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(this.nodeId)) {
      throw new ProtocastError(Code.InvalidArgument, `nodeId must be 1-64 base64url characters, got "${this.nodeId}"`);
    }
    this.heartbeatMs = positive("heartbeatMs", options.heartbeatMs ?? defaultClusterOptions.heartbeatMs);
    this.nodeTimeoutMs = positive("nodeTimeoutMs", options.nodeTimeoutMs ?? defaultClusterOptions.nodeTimeoutMs);
    this.requestTimeoutMs = positive("requestTimeoutMs", options.requestTimeoutMs ?? defaultClusterOptions.requestTimeoutMs);
    if (this.nodeTimeoutMs <= this.heartbeatMs) {
      throw new ProtocastError(Code.InvalidArgument, `nodeTimeoutMs (${this.nodeTimeoutMs}) must exceed heartbeatMs (${this.heartbeatMs})`);
    }
    const all = this.broker.subscribe(
      CLUSTER_CHANNEL,
      (ev) => this.onCluster(ev),
      () => void this.send(CLUSTER_CHANNEL, { t: "sync", n: this.nodeId }),
    );
    const mine = this.broker.subscribe(
      nodeChannel(this.nodeId),
      (ev) => this.onNode(ev),
      () => this.lostRequests(),
    );
    this.stops.push(all, mine);
    this.ready = Promise.all([all, mine]).then(async () => {
      // Everyone answers with their principal counts; the answers also say who is alive.
      await this.send(CLUSTER_CHANNEL, { t: "sync", n: this.nodeId });
      await this.send(CLUSTER_CHANNEL, { t: "hb", n: this.nodeId });
    });
    this.ready.catch((e: unknown) => host.error(e));
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  // ---- nodes ----------------------------------------------------------------------------

  /** Other nodes that are alive. */
  liveNodes(): string[] {
    return Array.from(this.nodes.keys());
  }

  /** Milliseconds since a node was last heard from; Infinity for one not known (or dead). */
  silentFor(node: string): number {
    const at = this.nodes.get(node);
    return at === undefined ? Infinity : this.now() - at;
  }

  /**
   * Whether a node is gone for good: the broker says nothing listens on its node channel any
   * more (a killed process loses its broker connection at once), or, when the broker cannot
   * tell, the node was already counted dead. A node that is merely slow is not gone.
   */
  async gone(node: string): Promise<boolean> {
    if (node === this.nodeId) return false;
    const listening = await this.broker.listening?.(nodeChannel(node)).catch(() => undefined);
    if (listening !== undefined) return !listening;
    return !this.nodes.has(node) && this.departed.has(node);
  }

  private heard(node: string): void {
    if (node === this.nodeId) return;
    const known = this.nodes.has(node);
    this.nodes.set(node, this.now());
    if (known || this.closed) return;
    // A node this one did not know (new, or back after a broker outage): ask for its
    // principals, and refresh the members of every presence channel served here.
    void this.send(nodeChannel(node), { t: "sync", n: this.nodeId });
    const channels = this.host.presenceChannels();
    for (let i = 0; i < channels.length; i += REG_CHUNK) {
      void this.send(nodeChannel(node), { t: "pm", n: this.nodeId, ch: channels.slice(i, i + REG_CHUNK) });
    }
    // A node seen before and counted dead: the two were cut apart (a broker outage on either
    // side), and what the other dropped of this node's members it may not ask for again.
    if (this.departed.delete(node)) {
      for (const ch of channels) void this.send(presenceChannel(ch), { t: "s", n: this.nodeId, r: "", m: this.host.localMembers(ch) });
      this.sendTable(node);
    }
  }

  /**
   * Messages to this node were lost (its subscription was down while the broker took them, as
   * after an outage of its own broker connection). What they asked for is sent anyway: this
   * node's members of every presence channel it serves and its principal table to every node it
   * knows. Otherwise a node that counted this one dead, and asked for its members while this
   * node's subscription was coming back, would never list them again.
   */
  private lostRequests(): void {
    if (this.closed) return;
    this.announceMembers(this.host.presenceChannels());
    for (const node of this.nodes.keys()) this.sendTable(node);
  }

  /** This node's members of each channel that has some here, as unrequested snapshots. */
  private announceMembers(channels: readonly string[]): void {
    for (const ch of channels) {
      const members = this.host.localMembers(ch);
      if (members.length > 0) void this.send(presenceChannel(ch), { t: "s", n: this.nodeId, r: "", m: members });
    }
  }

  private beat(): void {
    void this.send(CLUSTER_CHANNEL, { t: "hb", n: this.nodeId });
    const now = this.now();
    for (const [node, at] of this.nodes) if (now - at > this.nodeTimeoutMs) this.drop(node);
  }

  private drop(node: string, silent = true): void {
    if (!this.nodes.delete(node)) return;
    if (silent) {
      this.departed.add(node);
      // Only the most recent ones are kept.
      for (const n of this.departed) {
        if (this.departed.size <= MAX_DEPARTED) break;
        this.departed.delete(n);
      }
    }
    for (const [p, byNode] of this.remote) {
      byNode.delete(node);
      if (byNode.size === 0) this.remote.delete(p);
    }
    for (const s of this.snapshots.values()) {
      s.pending.delete(node);
      if (s.pending.size === 0) s.done();
    }
    this.host.nodeGone(node);
  }

  // ---- principals -------------------------------------------------------------------------

  /** A named principal's sessions or connections changed here; other nodes hear of it soon. */
  touch(principal: string): void {
    this.dirty.add(principal);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setTimeout(() => {
      this.flushQueued = false;
      const entries = Array.from(this.dirty, (p): [string, number, number] => {
        const c = this.host.localCounts(p);
        return [p, c.sessions, c.connections];
      });
      this.dirty.clear();
      for (let i = 0; i < entries.length; i += REG_CHUNK) {
        void this.send(CLUSTER_CHANNEL, { t: "reg", n: this.nodeId, e: entries.slice(i, i + REG_CHUNK) });
      }
    }, 0);
  }

  /** Live connections of a principal on other nodes. */
  remoteConnections(principal: string): number {
    let n = 0;
    for (const [, c] of this.remote.get(principal) ?? []) n += c[1];
    return n;
  }

  /** What other nodes last reported of a principal: [node, sessions, connections]. */
  whereIs(principal: string): [string, number, number][] {
    return Array.from(this.remote.get(principal) ?? [], ([node, c]): [string, number, number] => [node, c[0], c[1]]);
  }

  /** Other nodes holding sessions of a principal, with how many. */
  remoteSessions(principal: string): [string, number][] {
    const out: [string, number][] = [];
    for (const [node, c] of this.remote.get(principal) ?? []) if (c[0] > 0) out.push([node, c[0]]);
    return out;
  }

  private applyCounts(node: string, entries: [string, number, number][]): void {
    for (const [p, sessions, connections] of entries) {
      let byNode = this.remote.get(p);
      if (sessions === 0 && connections === 0) {
        byNode?.delete(node);
        if (byNode?.size === 0) this.remote.delete(p);
        continue;
      }
      if (byNode === undefined) this.remote.set(p, (byNode = new Map()));
      byNode.set(node, [sessions, connections]);
    }
  }

  private sendTable(to: string): void {
    const entries: [string, number, number][] = [];
    for (const p of this.host.localPrincipals()) {
      const c = this.host.localCounts(p);
      entries.push([p, c.sessions, c.connections]);
    }
    for (let i = 0; i < entries.length; i += REG_CHUNK) {
      void this.send(nodeChannel(to), { t: "reg", n: this.nodeId, e: entries.slice(i, i + REG_CHUNK) });
    }
    // An empty table still tells the new node that this one is alive.
    if (entries.length === 0) void this.send(nodeChannel(to), { t: "reg", n: this.nodeId, e: [] });
  }

  /** Delivers a push to the sessions of a principal on another node. */
  push(node: string, principal: string, method: string, payload: Uint8Array): void {
    void this.send(nodeChannel(node), { t: "push", n: this.nodeId, p: principal, m: method, b: toBase64(payload) });
  }

  // ---- sessions -----------------------------------------------------------------------------

  /** The node a session id names ("<node>.<random>"), or undefined. */
  static ownerOf(sessionId: string): string | undefined {
    const dot = sessionId.indexOf(".");
    return dot > 0 ? sessionId.slice(0, dot) : undefined;
  }

  /** Asks a session's node to hand it over; "refused" with a reason when it will not or cannot. */
  async take(owner: string, request: TakeRequest, timeoutMs = this.requestTimeoutMs): Promise<TakeResult> {
    if (!this.nodes.has(owner)) return { kind: "refused", reason: "node_lost" };
    await this.ready;
    const r = randomId(9);
    return new Promise<TakeResult>((resolve) => {
      const timer = setTimeout(() => {
        this.takes.delete(r);
        resolve({ kind: "refused", reason: "node_lost" });
      }, timeoutMs);
      this.takes.set(r, (x) => {
        clearTimeout(timer);
        this.takes.delete(r);
        resolve(x);
      });
      void this.send(nodeChannel(owner), { t: "take", n: this.nodeId, r, q: request, m: 1 }).then((sent) => {
        if (!sent) this.takes.get(r)?.({ kind: "refused", reason: "node_lost" });
      });
      // A node killed outright never answers: do not wait out the timeout for it.
      void this.gone(owner).then((g) => g && this.takes.get(r)?.({ kind: "refused", reason: "node_lost" }));
    });
  }

  /** Asks every other node to remove sessions from a channel (all, or one principal's). */
  kick(channel: string, principal: string | undefined, reason: string): void {
    void this.send(CLUSTER_CHANNEL, { t: "kick", n: this.nodeId, ch: channel, p: principal ?? "", why: reason });
  }

  /** Sends an answer of a session that moved to `node`. */
  forward(node: string, sessionId: string, frame: Uint8Array): void {
    void this.send(nodeChannel(node), { t: "fwd", n: this.nodeId, s: sessionId, f: toBase64(frame) });
  }

  // ---- presence -----------------------------------------------------------------------------

  /** Starts receiving a channel's presence traffic (by default, into the host). */
  watchPresence(channel: string, into: (m: PresenceMessage) => void = (m) => this.host.presence(channel, m)): Promise<() => void> {
    return this.broker.subscribe(
      presenceChannel(channel),
      (ev) => {
        const m = decode(ev.payload) as PresenceMessage | undefined;
        if (m === undefined || m.n === this.nodeId) return;
        this.heard(m.n);
        if (m.t === "s") {
          const s = this.snapshots.get(m.r);
          if (s !== undefined && s.channel === channel) {
            s.pending.delete(m.n);
            if (s.pending.size === 0) s.done();
          }
        }
        into(m);
      },
      // Some presence traffic was lost: ask every node for its members again.
      () => void this.requestSnapshot(channel),
    );
  }

  announce(channel: string, message: PresenceMessage): void {
    void this.send(presenceChannel(channel), message);
  }

  /**
   * Asks every live node for its members of a channel; resolves when all answered (their
   * answers arrive as "s" presence messages) or after requestTimeoutMs.
   */
  requestSnapshot(channel: string): Promise<void> {
    const pending = new Set(this.nodes.keys());
    if (pending.size === 0) return Promise.resolve();
    const r = randomId(9);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.snapshots.delete(r);
        resolve();
      };
      const timer = setTimeout(done, this.requestTimeoutMs);
      const waiting = { channel, pending, done };
      this.snapshots.set(r, waiting);
      void this.send(CLUSTER_CHANNEL, { t: "pq", n: this.nodeId, r, ch: channel }).then((sent) => {
        if (!sent) done();
      });
      // A node that died since it was last heard from has no members to report, and no
      // answer will come: it is not waited for (it is counted dead later, on its timeout).
      for (const node of pending) {
        void this.gone(node).then((g) => {
          if (!g || !waiting.pending.delete(node)) return;
          if (waiting.pending.size === 0) done();
        });
      }
    });
  }

  // ---- receiving ------------------------------------------------------------------------------

  private onCluster(ev: BrokerEvent): void {
    const m = decode(ev.payload) as ClusterMessage | undefined;
    if (m === undefined || m.n === this.nodeId) return;
    try {
      switch (m.t) {
        case "hb":
          this.heard(m.n);
          return;
        case "bye":
          this.nodes.set(m.n, 0);
          this.drop(m.n, false);
          return;
        case "sync":
          this.heard(m.n);
          this.sendTable(m.n);
          return;
        case "reg":
          this.heard(m.n);
          this.applyCounts(m.n, m.e);
          return;
        case "kick":
          this.heard(m.n);
          this.host.kick(m.ch, m.p === "" ? undefined : m.p, m.why);
          return;
        case "pq":
          this.heard(m.n);
          void this.send(presenceChannel(m.ch), { t: "s", n: this.nodeId, r: m.r, m: this.host.localMembers(m.ch) });
          return;
      }
    } catch (e) {
      this.host.error(e);
    }
  }

  private onNode(ev: BrokerEvent): void {
    const m = decode(ev.payload) as NodeMessage | undefined;
    if (m === undefined) return;
    this.heard(m.n);
    try {
      switch (m.t) {
        case "reg":
          this.applyCounts(m.n, m.e);
          return;
        case "sync":
          this.sendTable(m.n);
          return;
        case "pm":
          // A node that lost sight of this one asks for its members of the channels it serves.
          this.announceMembers(m.ch);
          return;
        case "take": {
          const x = this.host.giveSession(m.q, m.n);
          if (x.kind === "moved") {
            // The session went on to another node: the request follows it there, still
            // naming the node that asked, which gets the answer.
            if (x.node === m.n || !this.nodes.has(x.node)) {
              void this.send(nodeChannel(m.n), { t: "took", n: this.nodeId, r: m.r, x: { kind: "refused", reason: "node_lost" } });
            } else if (m.m === 1) {
              // The asker follows the move itself, and only while its client still waits: a
              // request passed on after that client left would take the session away from the
              // connection the client made since.
              void this.send(nodeChannel(m.n), { t: "took", n: this.nodeId, r: m.r, x: { kind: "moved", node: x.node } });
            } else void this.send(nodeChannel(x.node), { t: "take", n: m.n, r: m.r, q: m.q });
            return;
          }
          void this.send(nodeChannel(m.n), { t: "took", n: this.nodeId, r: m.r, x: x.kind === "taken" ? { kind: "taken", state: snapshotToWire(x.state) } : x });
          return;
        }
        case "took":
          this.takes.get(m.r)?.(m.x.kind === "taken" ? { kind: "taken", state: snapshotFromWire(m.x.state) } : m.x);
          return;
        case "fwd":
          this.host.forwarded(m.s, fromBase64(m.f));
          return;
        case "push":
          this.host.pushed(m.p, m.m, fromBase64(m.b));
          return;
      }
    } catch (e) {
      this.host.error(e);
    }
  }

  /** Publishes a control message; false when the broker refused it (the host hears why). */
  private async send(channel: string, message: ClusterMessage | NodeMessage | PresenceMessage): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.broker.publish(channel, encoder.encode(JSON.stringify(message)), NO_HISTORY);
      return true;
    } catch (e) {
      this.host.error(e);
      return false;
    }
  }

  /** Leaves the cluster: other nodes drop this one's principals and members at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    await this.send(CLUSTER_CHANNEL, { t: "bye", n: this.nodeId });
    this.closed = true;
    for (const s of Array.from(this.snapshots.values())) s.done();
    for (const t of Array.from(this.takes.values())) t({ kind: "refused", reason: "node_lost" });
    await Promise.all(this.stops.map((p) => p.then((stop) => stop()).catch(() => undefined)));
  }
}

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new ProtocastError(Code.InvalidArgument, `cluster option ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decode(bytes: Uint8Array): unknown {
  try {
    const v: unknown = JSON.parse(decoder.decode(bytes));
    return typeof v === "object" && v !== null && typeof (v as { t?: unknown }).t === "string" && typeof (v as { n?: unknown }).n === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
