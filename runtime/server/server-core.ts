import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { Broker } from "../broker/broker.js";
import { createMemoryBroker } from "../broker/memory.js";
import { CloseCode } from "../errors/close-codes.js";
import { formatCloseReason } from "../errors/close-reason.js";
import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";
import type { AnyMethodDef, ChannelDef, EventDef, ServiceDefinition } from "../service/define.js";
import type { Transport } from "../transport/transport.js";
import { hashBytes } from "../session/hash.js";
import type { Outcome } from "../session/idempotency-window.js";
import { createMemoryIdempotencyStore, type IdempotencyStore } from "../broker/idempotency-store.js";
import type { RetransmitLimits } from "../session/retransmit-buffer.js";
import { DeadlineSweep } from "../session/deadline-sweep.js";
import { ServerConnection } from "./connection.js";
import { ServerSession } from "./session.js";
import { isTransient, toErrorOutcome } from "./call-outcome.js";
import type { AuthorizeRequest, CallContext, Principal, PublishContext, PublishResult, Publisher, ServerPublishOptions } from "./context.js";
import type { Tracing } from "../session/tracing.js";
import type { Metadata } from "../wire/metadata.js";
import { tracedPublish, type PublishParent } from "./traced-publish.js";
import { bump, createCounters, type ServerCounters, type ServerObserver } from "./counters.js";
import { ChannelHub } from "./hub.js";
import { judgeResume } from "../session/resume.js";
import { Cluster, type ClusterHost, type ClusterOptions, type PresenceMessage, type TakeRequest, type TakeResult } from "./cluster.js";
import { randomId } from "./ids.js";
import { SessionKeeper } from "./keeper.js";
import { SessionsByPrincipal } from "./sessions-by-principal.js";
import { decodeEnvelope } from "../wire/decode.js";
import type { Member } from "../wire/envelope.js";
import { hasScope } from "./scopes.js";
import { resolveDecodeLimits, type DecodeLimits } from "../wire/limits.js";
import { checkCoreOptions, resolveLimits, type ServerCoreOptions, type ServerLimits } from "./options.js";

/** Sessions handed to other nodes that a node remembers, to send later Resumes after them. */
const MAX_MOVED = 100_000;

/** How long a node with a session store waits for a handover before it claims from the store. */
const STORE_HANDOVER_WAIT_MS = 500;
/** How many times an adoption follows a session that moved on before giving up on it. */
const MAX_TAKE_HOPS = 4;

import type { CallHandler, PublishHook, SessionHost } from "./session-host.js";

/** A connection-level log record. Never carries a credential. */
export interface ConnectionLogRecord {
  readonly event: string;
  readonly connectionId: string;
  readonly sessionId: string;
  readonly principal: string;
  readonly remoteAddress: string;
  readonly [key: string]: unknown;
}

/**
 * The transport-independent server: method registry, connections, channels, heartbeats.
 * Adapters (WebSocket, in-memory) hand it authenticated transports through accept().
 */
export class ServerCore implements SessionHost<ServerSession> {
  readonly limits: ServerLimits;
  /** Decoder limits, resolved once: the envelope size limit is the server's. */
  readonly decodeLimits: DecodeLimits;
  readonly broker: Broker;
  readonly hub: ChannelHub;
  readonly now: () => number;
  /** True when the broker is the embedded one this core made: nothing is shared with other nodes. */
  readonly ownsBroker: boolean;
  /** This node's id; session ids start with it ("<node>.<random>"). */
  readonly nodeId: string;
  /** The other nodes on the same broker; undefined for a node on its own. */
  readonly cluster: Cluster | undefined;
  /** Writes sessions to a shared session store; undefined when sessions live in memory only. */
  readonly keeper: SessionKeeper | undefined;
  private readonly methods = new Map<string, AnyMethodDef>();
  private readonly handlers = new Map<string, CallHandler>();
  private readonly publishHooks = new Map<string, PublishHook>();
  readonly connections = new Set<ServerConnection>();
  /** Live and detached sessions by id. */
  readonly sessions = new Map<string, ServerSession>();
  /** Adoptions under way, by session id: a second resume of the same session waits for the first. */
  private readonly adopting = new Map<string, Promise<ServerSession | string>>();
  /** Sessions handed to other nodes recently, so that a later Resume elsewhere finds them. */
  private readonly moved = new Map<string, { node: string; at: number }>();
  /** Ids of sessions that expired recently, so that a late Resume hears "expired". */
  private readonly expired = new Map<string, number>();
  /** Sessions of each principal, attached or in their grace period: pushes reach both. */
  private readonly byPrincipal = new SessionsByPrincipal<ServerSession>();
  private readonly ackDue = new Set<ServerSession>();
  /** Live connections per named principal, for maxConnectionsPerPrincipal. */
  private readonly perPrincipal = new Map<string, number>();
  readonly idempotency: IdempotencyStore;
  /** The store is the embedded one this core made, so close() closes it (and its sweep timer). */
  private readonly ownsIdempotency: boolean;
  readonly retransmitLimits: RetransmitLimits;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly tick: ReturnType<typeof setInterval>;
  private closing: Promise<void> | undefined;
  logger: ((record: ConnectionLogRecord) => void) | undefined;
  readonly counters: ServerCounters = createCounters();
  readonly authorize: ((request: AuthorizeRequest) => boolean | Promise<boolean>) | undefined;
  /** Makes spans when set (ServerCoreOptions.tracing). */
  readonly tracing: Tracing | undefined;
  private readonly reauth: ((token: string, current: Principal) => Principal | Promise<Principal>) | undefined;
  observer: ServerObserver | undefined;
  /** Hears failures of shared stores that no request awaits. */
  storeError: ((error: unknown) => void) | undefined;
  /** The one timer for every running call's deadline. */
  readonly callDeadlines: DeadlineSweep;
  /** publish() and push() bound once, for every handler context. */
  readonly publisher: Publisher = {
    publish: (channel, params, message, options) => this.publish(channel, params, message, options),
    push: (event, principalId, message) => this.push(event, principalId, message),
  };

  constructor(options: ServerCoreOptions = {}) {
    checkCoreOptions("server", options);
    this.limits = resolveLimits(options);
    this.decodeLimits = resolveDecodeLimits({ maxEnvelopeBytes: this.limits.maxEnvelopeBytes });
    this.now = options.now ?? Date.now;
    this.ownsBroker = options.broker === undefined;
    this.authorize = options.authorize;
    this.reauth = options.reauthenticate;
    this.tracing = options.tracing;
    this.broker = options.broker ?? createMemoryBroker({ now: this.now });
    this.hub = new ChannelHub(this.broker, this.tracing);
    const clusterOptions = options.cluster ?? {};
    if (!this.ownsBroker && clusterOptions !== false) {
      const cluster = new Cluster(this.broker, this.clusterHost(), clusterOptions, this.now);
      this.cluster = cluster;
      this.nodeId = cluster.nodeId;
      this.hub.link = cluster;
    } else {
      this.cluster = undefined;
      this.nodeId = (clusterOptions === false ? undefined : clusterOptions.nodeId) ?? randomId(9);
    }
    const store = options.sessions;
    const l0 = this.limits;
    this.keeper =
      store === undefined
        ? undefined
        : new SessionKeeper(store, this.nodeId, l0.graceMs * 2 + 10_000, () => this.sessions.values(), (e) => this.storeError?.(e));
    this.ownsIdempotency = options.idempotency === undefined;
    this.idempotency =
      options.idempotency ??
      createMemoryIdempotencyStore({
        maxKeysPerPrincipal: this.limits.idempotencyKeys,
        maxRecords: this.limits.maxIdempotencyRecords,
        ttlMs: this.limits.idempotencyTtlMs,
        now: this.now,
      });
    this.callDeadlines = new DeadlineSweep({
      now: this.now,
      schedule: (fn, ms) => {
        const t = setTimeout(fn, ms);
        (t as { unref?: () => void }).unref?.();
        return t;
      },
      cancel: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
    });
    this.retransmitLimits = { maxFrames: this.limits.retransmitFrames, maxBytes: this.limits.retransmitBytes };
    // One timer for every connection's heartbeat and handshake deadline: idle connections
    // cost no timer of their own.
    // Fine enough for the shortest deadline it watches (a quarter of it), at most once a second.
    const l = this.limits;
    const shortest = Math.min(l.pingTimeoutMs, l.handshakeTimeoutMs, l.graceMs, l.maxConnectionLifetimeMs, l.refreshLeadMs, l.closeTimeoutMs);
    const every = Math.max(20, Math.min(1000, Math.floor(shortest / 4)));
    this.tick = setInterval(() => this.heartbeat(), every);
    (this.tick as { unref?: () => void }).unref?.();
  }

  implement<H>(service: ServiceDefinition<H, unknown, unknown, unknown>, handlers: H): void {
    const table = handlers as Record<string, unknown>;
    for (const [path, def] of service.byPath) {
      if (this.methods.has(path)) throw new ProtocastError(Code.AlreadyExists, `${path} is implemented twice`);
      if (def.kind === "call") {
        const fn = table[def.localName];
        if (typeof fn !== "function") {
          throw new ProtocastError(Code.InvalidArgument, `handlers for ${service.typeName} lack ${def.localName}()`);
        }
        this.handlers.set(path, fn.bind(handlers) as CallHandler);
      } else if (def.kind === "channel" && def.rules.clientPublish) {
        const hookName = `publish${def.localName.charAt(0).toUpperCase()}${def.localName.slice(1)}`;
        const fn = table[hookName];
        if (typeof fn === "function") this.publishHooks.set(path, fn.bind(handlers) as PublishHook);
      }
    }
    for (const [path, def] of service.byPath) this.methods.set(path, def);
  }

  lookup(path: string): AnyMethodDef | undefined {
    return this.methods.get(path);
  }

  handlerFor(path: string): CallHandler | undefined {
    return this.handlers.get(path);
  }

  publishHookFor(path: string): PublishHook | undefined {
    return this.publishHooks.get(path);
  }

  /** True once close() began: new connections are refused. */
  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /** Takes over an authenticated transport. */
  accept(transport: Transport, principal: Principal, remoteAddress = ""): ServerConnection {
    const conn = new ServerConnection(this, transport, principal, remoteAddress);
    if (this.closing !== undefined) {
      transport.attach(conn);
      transport.close(CloseCode.GoingAway, "server is shutting down");
      return conn;
    }
    this.connections.add(conn);
    transport.attach(conn);
    if (principal.anonymous !== true) {
      const n = (this.perPrincipal.get(principal.id) ?? 0) + 1;
      this.perPrincipal.set(principal.id, n);
      this.cluster?.touch(principal.id);
      // Connections on other nodes count too (as last heard: within a moment of each other,
      // two nodes can each admit one more).
      if (n + (this.cluster?.remoteConnections(principal.id) ?? 0) > this.limits.maxConnectionsPerPrincipal) {
        bump(this.counters.limitHits, "connections_per_principal");
        conn.close(CloseCode.TooManyConnections, formatCloseReason("too_many_connections", `at most ${this.limits.maxConnectionsPerPrincipal} connections per principal`));
      }
    }
    return conn;
  }

  /** Live connections of a named principal, here and (as last heard) on the other nodes. */
  connectionsOf(principalId: string): number {
    return (this.perPrincipal.get(principalId) ?? 0) + (this.cluster?.remoteConnections(principalId) ?? 0);
  }

  /**
   * The connection registry: where a named principal is connected, node by node (this node's
   * counts are current, the others' as last reported).
   */
  locate(principalId: string): { node: string; sessions: number; connections: number }[] {
    const out = [];
    const sessions = this.byPrincipal.count(principalId);
    const connections = this.perPrincipal.get(principalId) ?? 0;
    if (sessions > 0 || connections > 0) out.push({ node: this.nodeId, sessions, connections });
    for (const [node, s, c] of this.cluster?.whereIs(principalId) ?? []) out.push({ node, sessions: s, connections: c });
    return out;
  }

  /** Checks a credential sent on a live connection. */
  async reauthenticate(token: string, current: Principal): Promise<Principal> {
    if (this.reauth === undefined) throw new ProtocastError(Code.Unimplemented, "this server does not accept credential refresh");
    return this.reauth(token, current);
  }

  /**
   * Sends Goaway on the live connection of one session; the connection is closed with 4000
   * after `closeInMs` if the client is still there. False when the session has no connection here.
   */
  goaway(sessionId: string, reason: string, reconnectAfterMs: number, closeInMs: number): boolean {
    const conn = this.sessions.get(sessionId)?.conn;
    if (conn === undefined) return false;
    (conn as ServerConnection).goawayNow(reason, reconnectAfterMs, closeInMs);
    return true;
  }

  /**
   * Removes a named principal's clients from this node: each live connection is closed with
   * 4503, which ends its session and tells the client not to reconnect (PROTOCOL.md 10.2).
   * Returns how many connections were closed.
   */
  disconnect(principalId: string, reason: string): number {
    let n = 0;
    for (const conn of Array.from(this.connections)) {
      if (conn.principal.id !== principalId || conn.principal.anonymous === true || conn.state === "closed") continue;
      conn.close(CloseCode.Forbidden, reason);
      n++;
    }
    return n;
  }

  /**
   * Removes sessions from a channel at once: every one, or those of one principal, on this node
   * and (in a cluster) on every other. Returns how many were removed here.
   */
  kick(channel: string, principalId: string | undefined, reason: string): number {
    this.cluster?.kick(channel, principalId, reason);
    return this.kickLocal(channel, principalId, reason);
  }

  private kickLocal(channel: string, principalId: string | undefined, reason: string): number {
    let n = 0;
    for (const s of this.sessions.values()) {
      if (principalId !== undefined && s.principal.id !== principalId) continue;
      if (s.kick(channel, reason)) n++;
    }
    return n;
  }

  /** Registers a new session. */
  addSession(session: ServerSession): void {
    this.sessions.set(session.id, session);
    this.byPrincipal.add(session.principal.id, session);
    if (session.principal.anonymous !== true) this.cluster?.touch(session.principal.id);
  }

  /** Drops a session from this node's tables without ending it (it moved, or is gone). */
  private unlist(session: ServerSession): void {
    this.sessions.delete(session.id);
    this.ackDue.delete(session);
    this.byPrincipal.delete(session.principal.id, session);
    if (session.principal.anonymous !== true) this.cluster?.touch(session.principal.id);
  }

  /**
   * Ends a session for good: leave events go out, calls are aborted, buffers freed. With
   * `keepStored`, a session store keeps it, so that its client can resume it on another node.
   */
  endSession(session: ServerSession, keepStored = false): void {
    session.end();
    this.unlist(session);
    if (!keepStored) this.keeper?.forget(session.id);
  }

  /** Another node took the session over in the store: this node lets go of it. */
  dropDisowned(session: ServerSession): void {
    this.endSession(session, true);
  }

  wasExpired(sessionId: string): boolean {
    return this.expired.has(sessionId);
  }

  /**
   * Runs an exactly-once request once per (principal, key): duplicates get the first outcome;
   * a duplicate that waits gives up when its own signal aborts.
   */
  async dedupe(
    principal: string,
    key: string,
    target: string,
    payload: Uint8Array,
    run: () => Promise<Uint8Array>,
    signal: AbortSignal | undefined,
    leaseMs: number,
  ): Promise<Outcome> {
    let begin;
    try {
      begin = await this.idempotency.begin(principal, key, { target, digest: hashBytes(payload) }, { leaseMs, signal });
    } catch (e) {
      // An aborted wait, or a shared store that cannot be reached: nothing ran here.
      if (signal?.aborted === true) return toErrorOutcome(signal.reason);
      // A window full of running requests: the client hears the limit, and may retry later.
      if (e instanceof ProtocastError && e.code === Code.ResourceExhausted) return toErrorOutcome(e);
      return toErrorOutcome(
        new ProtocastError(Code.Unavailable, `idempotency store unavailable: ${e instanceof Error ? e.message : String(e)}`, { reason: "idempotency_store" }),
      );
    }
    switch (begin.kind) {
      case "conflict":
        return toErrorOutcome(
          new ProtocastError(Code.FailedPrecondition, `idempotency key was used for a different request`, { reason: "idempotency_key_reused" }),
        );
      case "done":
        this.counters.dedupeHits++;
        return begin.outcome;
      case "run": {
        let outcome: Outcome;
        try {
          outcome = { kind: "reply", payload: await run() };
        } catch (e) {
          outcome = toErrorOutcome(e);
        }
        try {
          if (isTransient(outcome)) await this.idempotency.forget(principal, key, outcome);
          else await this.idempotency.complete(principal, key, outcome);
        } catch (e) {
          // The request ran and its outcome goes to the client; a retry elsewhere may run it
          // again, because the record could not be written.
          this.storeError?.(e);
        }
        return outcome;
      }
    }
  }

  forget(conn: ServerConnection, code: number, reason: string): void {
    this.connections.delete(conn);
    if (conn.principal.anonymous !== true) {
      const n = (this.perPrincipal.get(conn.principal.id) ?? 1) - 1;
      if (n <= 0) this.perPrincipal.delete(conn.principal.id);
      else this.perPrincipal.set(conn.principal.id, n);
      this.cluster?.touch(conn.principal.id);
    }
    bump(this.counters.closeCodes, code);
    this.log("disconnect", conn, {
      code,
      reason,
      durationMs: this.now() - conn.acceptedAt,
      bytesIn: conn.bytesIn,
      bytesOut: conn.bytesOut,
    });
  }

  log(event: string, conn: ServerConnection | undefined, extra: Record<string, unknown>): void {
    if (conn === undefined) return;
    this.logger?.({
      event,
      connectionId: conn.id,
      sessionId: conn.sessionId,
      principal: conn.principal.id,
      remoteAddress: conn.remoteAddress,
      ...extra,
    });
  }

  /**
   * Publishes a typed message; it is encoded once here and framed once by the hub. `parent`
   * is the handler span of a publish made inside a traced call (CallContext.publish).
   */
  publish<P extends object, M extends DescMessage>(
    channel: ChannelDef<P, M, any>,
    params: P,
    message: MessageInitShape<M>,
    options?: ServerPublishOptions,
    parent?: PublishParent,
  ): Promise<PublishResult> {
    const name = channel.topic(params);
    const payload = channel.messageCodec.encode(message);
    return this.publishBytes(channel as unknown as ChannelDef, name, payload, options?.metadata, false, parent);
  }

  /**
   * Publishes encoded bytes with their metadata: the application's is checked against the
   * limits, a client's (`checked`) was checked on arrival.
   */
  async publishBytes(def: ChannelDef, channel: string, payload: Uint8Array, metadata?: Metadata, checked = false, parent?: PublishParent): Promise<PublishResult> {
    const r = def.rules;
    const historySize = r.historySize || (r.delivery === "at-most-once" ? 0 : this.limits.historySize);
    const history = { historySize, historyTtlMs: r.historyTtlMs || this.limits.historyTtlMs };
    const pos =
      metadata === undefined && this.tracing === undefined
        ? await this.broker.publish(channel, payload, history)
        : await tracedPublish(this.broker, def, channel, payload, history, metadata, checked, this.limits, this.tracing, parent);
    return { channel, epoch: pos.epoch, offset: pos.offset };
  }

  /**
   * Pushes a direct event to every session of a principal, on this node and (in a cluster) on
   * every other node that has one. Returns the sessions reached here plus those the other
   * nodes last reported.
   */
  push<M extends DescMessage>(event: EventDef<M, any>, principalId: string, message: MessageInitShape<M>): number {
    const payload = event.messageCodec.encode(message);
    let n = this.pushLocal(event as unknown as EventDef, principalId, payload);
    for (const [node, sessions] of this.cluster?.remoteSessions(principalId) ?? []) {
      this.cluster?.push(node, principalId, event.path, payload);
      n += sessions;
    }
    return n;
  }

  private pushLocal(event: EventDef, principalId: string, payload: Uint8Array): number {
    const set = this.byPrincipal.of(principalId);
    const reliable = event.rules.delivery !== "at-most-once";
    let n = 0;
    for (const session of set) {
      if (!hasScope(session.principal, event.rules.scope)) continue;
      // At-most-once pushes are not numbered: they may be dropped, and a numbered frame may not.
      if (reliable) session.sendSequenced({ case: "push", value: { method: event.path, payload } });
      else session.sendUnsequenced({ case: "push", value: { method: event.path, payload } });
      n++;
    }
    return n;
  }

  /**
   * Who is in a channel, on every node. A node that serves the channel answers from what it
   * knows; otherwise it asks the other nodes (bounded by the cluster's requestTimeoutMs).
   */
  async presence(channel: string): Promise<Member[]> {
    if (this.hub.serves(channel) || this.cluster === undefined) return this.hub.members(channel);
    const cluster = this.cluster;
    const found = new Map<string, Member>();
    const stop = await cluster.watchPresence(channel, (m) => {
      if (m.t === "s") for (const x of m.m) found.set(x.clientId, x);
    });
    try {
      await cluster.requestSnapshot(channel);
    } finally {
      stop();
    }
    return Array.from(found.values());
  }

  /**
   * Takes over a session held by another node of the cluster. Resolves to the session, now
   * registered here, or to the reason it could not be had. `wanted` says whether the client that
   * asked still waits: a session that moved on is followed to its next node only while it does.
   */
  adopt(request: TakeRequest, wanted: () => boolean = () => true): Promise<ServerSession | string> {
    const id = request.sessionId;
    const running = this.adoptNow(request, wanted);
    this.adopting.set(id, running);
    const done = (): void => {
      if (this.adopting.get(id) === running) this.adopting.delete(id);
    };
    running.then(done, done);
    return running;
  }

  adoptionOf(sessionId: string): Promise<unknown> | undefined {
    return this.adopting.get(sessionId);
  }

  private async adoptNow(request: TakeRequest, wanted: () => boolean): Promise<ServerSession | string> {
    const owner = Cluster.ownerOf(request.sessionId);
    if (owner === undefined || owner === this.nodeId) return "unknown";
    const keeper = this.keeper;
    let reason = "node_lost";
    // With a store, a node silent for two heartbeats is not waited for: the store has all its
    // session's client ever received, and a claim makes any late write of that node fail.
    const gone = keeper !== undefined && (this.cluster === undefined || this.cluster.silentFor(owner) > 2 * this.cluster.heartbeatMs);
    if (this.cluster !== undefined && !gone) {
      // A live node answers within a broker round trip. With a store, a node that does not
      // answer soon is taken for dead: claiming the session fences off its later writes.
      const wait = keeper === undefined ? this.cluster.requestTimeoutMs : Math.min(STORE_HANDOVER_WAIT_MS, this.cluster.requestTimeoutMs);
      let result = await this.cluster.take(owner, request, wait);
      // The session moved on: ask where it went, a few hops at most, and only while the client
      // waits here (taking it from the connection that client made elsewhere since would strand it).
      for (let hops = 0; result.kind === "moved"; hops++) {
        if (!wanted()) return "unknown";
        result = hops < MAX_TAKE_HOPS ? await this.cluster.take(result.node, request, wait) : { kind: "refused", reason: "node_lost" };
      }
      if (result.kind === "taken") {
        const st = result.state;
        const session = new ServerSession(this, JSON.parse(st.principal) as Principal, { id: st.id, token: st.token });
        session.restore(st, "node");
        if (keeper !== undefined) {
          // The old node may not have stored its last frames: they are written from here.
          const stored = await keeper.store.claim(st.id, this.nodeId, keeper.ttlMs).catch(() => undefined);
          session.reconcile(stored?.outSeq ?? 0, stored?.inSeq ?? 0, stored === undefined);
        }
        this.addSession(session);
        this.counters.sessionsAdopted++;
        return session;
      }
      reason = result.reason;
    }
    // The node is gone, or no longer knows where the session went: the store has the last word.
    if (keeper === undefined || (reason !== "node_lost" && reason !== "unknown")) return reason;
    // Only for a client still waiting here: a claim fences off whichever node holds the session,
    // and one made for a client that has left would cut the connection it made elsewhere since.
    if (!wanted()) return "unknown";
    let stored;
    try {
      stored = await keeper.store.claim(request.sessionId, this.nodeId, keeper.ttlMs);
    } catch (e) {
      this.storeError?.(e);
      return "node_lost";
    }
    if (stored === undefined) return "unknown";
    let principal: Principal;
    try {
      principal = JSON.parse(stored.principal) as Principal;
    } catch {
      return "unknown";
    }
    const session = new ServerSession(this, principal, { id: stored.id, token: stored.token });
    session.restore(stored, "store");
    const verdict = judgeResume(session.asResumeCandidate(stored.outSeq), request);
    if (verdict.kind !== "resume") {
      // Overflow or beyond what was sent: the stored session cannot go on; others keep it.
      if (verdict.kind === "violation" || verdict.endsSession) keeper.forget(stored.id);
      return verdict.reason;
    }
    this.addSession(session);
    this.counters.sessionsRestored++;
    return session;
  }

  private clusterHost(): ClusterHost {
    return {
      localCounts: (p) => ({ sessions: this.byPrincipal.count(p), connections: this.perPrincipal.get(p) ?? 0 }),
      localPrincipals: () => {
        const all = new Set(this.perPrincipal.keys());
        for (const [p, set] of this.byPrincipal.entries()) {
          for (const s of set) if (s.principal.anonymous !== true) all.add(p);
        }
        return all;
      },
      giveSession: (request, to) => this.giveSession(request, to),
      forwarded: (sessionId, bytes) => {
        const s = this.sessions.get(sessionId);
        if (s === undefined) return;
        const frame = decodeEnvelope(bytes).frame;
        if (frame !== undefined) s.forwarded(frame);
      },
      pushed: (principal, method, payload) => {
        const def = this.lookup(method);
        if (def?.kind === "event") this.pushLocal(def, principal, payload);
      },
      nodeGone: (node) => this.hub.nodeGone(node),
      presenceChannels: () => this.hub.presenceChannels(),
      kick: (channel, principal, reason) => void this.kickLocal(channel, principal, reason),
      presence: (channel, message: PresenceMessage) => this.hub.onPresence(channel, message),
      localMembers: (channel) => this.hub.localMembers(channel),
      error: (e) => this.storeError?.(e),
    };
  }

  /** Another node asks for a session its client resumed there. */
  private giveSession(request: TakeRequest, to: string): TakeResult | { readonly kind: "moved"; readonly node: string } {
    const s = this.sessions.get(request.sessionId);
    const movedTo = s === undefined ? this.moved.get(request.sessionId) : undefined;
    if (movedTo !== undefined) return { kind: "moved", node: movedTo.node };
    if (s === undefined || s.ended) return { kind: "refused", reason: this.wasExpired(request.sessionId) ? "expired" : "unknown" };
    const verdict = judgeResume(s.asResumeCandidate(), request);
    if (verdict.kind !== "resume") {
      if (verdict.kind === "refuse" && verdict.endsSession) this.endSession(s);
      return { kind: "refused", reason: verdict.reason };
    }
    const old = s.conn;
    if (old !== undefined) {
      old.session = undefined;
      old.close(CloseCode.Normal, "resumed elsewhere");
    }
    const state = s.export();
    this.unlist(s);
    s.moveTo(to);
    this.moved.set(s.id, { node: to, at: this.now() });
    this.counters.sessionsHandedOver++;
    return { kind: "taken", state };
  }

  /** Queues a standalone Ack; one shared timer flushes all connections that still owe one. */
  scheduleAck(session: ServerSession): void {
    // Many frames waiting: acknowledge now rather than after the delay (PROTOCOL.md 4.3). With a
    // store, acknowledgements follow its writes instead (see ServerSession.stored).
    if (this.keeper === undefined && session.seq.ackUrgent && session.conn !== undefined) {
      this.ackDue.delete(session);
      session.sendUnsequenced({ case: "ack", value: { channels: [] } });
      return;
    }
    this.ackDue.add(session);
    if (this.ackTimer !== undefined) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      const due = Array.from(this.ackDue);
      this.ackDue.clear();
      for (const c of due) {
        if (c.seq.ackOwed) c.sendUnsequenced({ case: "ack", value: { channels: [] } });
      }
    }, this.limits.ackDelayMs);
  }

  private heartbeat(): void {
    const now = this.now();
    const l = this.limits;
    for (const session of this.sessions.values()) {
      if (session.conn === undefined && session.detachedAt !== 0 && now - session.detachedAt >= l.graceMs) {
        this.endSession(session);
        this.expired.set(session.id, now);
      }
    }
    for (const [id, at] of this.expired) {
      if (now - at < l.graceMs) break;
      this.expired.delete(id);
    }
    // A moved session may live on there for long: its Resumes keep arriving here as long as
    // its id names this node. Kept for a connection lifetime, at most MAX_MOVED of them.
    for (const [id, m] of this.moved) {
      if (now - m.at < l.maxConnectionLifetimeMs && this.moved.size <= MAX_MOVED) break;
      this.moved.delete(id);
    }
    for (const conn of this.connections) {
      if (conn.closingSince !== 0) {
        // A peer that does not read never answers the close frame either.
        if (now - conn.closingSince >= l.closeTimeoutMs) conn.abort();
        continue;
      }
      if (conn.state === "handshake") {
        if (now - conn.acceptedAt >= l.handshakeTimeoutMs) conn.close(CloseCode.HandshakeTimeout, "no hello in time");
      } else if (conn.state === "open") {
        if (conn.goawaySentAt !== 0) {
          if (now - conn.goawaySentAt >= conn.goawayCloseMs) conn.close(CloseCode.Reconnect, "connection rotated");
          continue;
        }
        const expiresAt = conn.principal.expiresAtMs ?? 0;
        if (expiresAt !== 0) {
          if (now >= expiresAt) {
            conn.close(CloseCode.TokenExpired, "credential expired");
            continue;
          }
          if (now >= expiresAt - l.refreshLeadMs) conn.warnExpiry(expiresAt);
        }
        if (now >= conn.rotateAt) {
          conn.goaway("max_lifetime", now);
          continue;
        }
        // Ack timeout (PROTOCOL.md 4.5): a client that answers Pings but acknowledges nothing
        // for as long as the watchdog's silence limit has a dead session layer.
        const waitingSince = conn.session?.ackWaitSince ?? 0;
        if (waitingSince !== 0 && now - waitingSince > l.pingIntervalMs + l.pingTimeoutMs) {
          conn.close(CloseCode.HeartbeatTimeout, "ack timeout");
          continue;
        }
        const due = conn.heartbeat.check(now);
        if (due === "timeout") conn.close(CloseCode.HeartbeatTimeout, "no pong in time");
        else if (due === "ping") conn.ping(now);
      }
    }
  }

  /**
   * Shuts down gracefully: refuses new connections, tells every client to go elsewhere
   * (Goaway, spread over a moment so they do not all come back at once), lets running calls
   * finish until the deadline, then closes what is left with 1001.
   */
  close(deadlineMs = 0): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      const open = Array.from(this.connections).filter((c) => c.state === "open");
      if (deadlineMs > 0 && open.length > 0) {
        const spread = Math.min(1_000, Math.floor(deadlineMs / 2));
        for (const c of open) c.goawayNow("shutdown", Math.floor(Math.random() * spread), deadlineMs);
        const end = Date.now() + deadlineMs;
        while (Date.now() < end && Array.from(this.sessions.values()).some((s) => s.running > 0)) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      clearInterval(this.tick);
      if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
      for (const conn of this.connections) conn.close(CloseCode.GoingAway, "server is shutting down");
      // A session store keeps the sessions, with everything written so far: their clients
      // resume them on other nodes.
      await this.keeper?.close();
      for (const session of Array.from(this.sessions.values())) this.endSession(session, this.keeper !== undefined);
      await this.hub.close();
      await this.cluster?.close();
      if (this.ownsBroker) await this.broker.close();
      if (this.ownsIdempotency) await this.idempotency.close();
      this.callDeadlines.close();
    })();
    return this.closing;
  }
}

