// What an application does with a running server, whatever carries its connections: handlers,
// publishing, pushes, presence, where principals are, counts, closing. Platform adapters (the
// Node server with WebSocket and the HTTP fallback, adapters/node) add listening to it.
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { ChannelDef, EventDef, ServiceDefinition } from "../service/define.js";
import type { ChannelMember } from "../service/member.js";
import type { PublishResult, ServerPublishOptions } from "./context.js";
import type { ServerCounters } from "./counters.js";
import type { ServerCore } from "./server-core.js";

export interface ServerStats {
  readonly connections: number;
  /** Sessions attached or in their grace period. */
  readonly sessions: number;
  /** Channels with members on this node. */
  readonly channels: number;
  /** Idempotency records held, all principals together. */
  readonly idempotencyRecords: number;
  /** Sequenced frames sent and not yet acknowledged, all sessions together. */
  readonly acksPending: number;
  /** Other live nodes on the same broker (0 for a node on its own). */
  readonly clusterNodes: number;
  /** Running totals since the server started. */
  readonly counters: Readonly<ServerCounters>;
}

export interface ServerApi {
  implement<H>(service: ServiceDefinition<H, unknown, unknown, unknown>, handlers: H): void;
  /** Publishes to a channel; `options.metadata` goes to every subscriber with the event. */
  publish<P extends object, M extends DescMessage>(channel: ChannelDef<P, M, any>, params: P, message: MessageInitShape<M>, options?: ServerPublishOptions): Promise<PublishResult>;
  push<M extends DescMessage>(event: EventDef<M, any>, principalId: string, message: MessageInitShape<M>): number;
  /**
   * Who is in a channel, on every node of the cluster (presence channels), or on this node
   * alone when it has no other nodes.
   */
  presence<P extends object>(channel: ChannelDef<P, DescMessage, any>, params: P): Promise<ChannelMember[]>;
  /** Live connections of a named principal, on every node of the cluster as last reported. */
  connectionsOf(principalId: string): number;
  /**
   * Where a named principal is connected: per node, its sessions (attached or in their grace
   * period) and live connections. Other nodes' figures are as they last reported them.
   */
  locate(principalId: string): { node: string; sessions: number; connections: number }[];
  /** This node's id in its cluster; session ids start with it. */
  readonly nodeId: string;
  /** Other nodes of the cluster that are alive (empty for a node on its own). */
  nodes(): string[];
  /** Channels of one method that have members on this node, with their parameters and members. */
  channels<P extends object>(channel: ChannelDef<P, DescMessage, any>): { channel: string; params: P; members: ChannelMember[] }[];
  readonly connectionCount: number;
  /** Counts of what the server holds right now; all zero after every client left for good. */
  stats(): ServerStats;
  /**
   * Removes sessions from a channel at once (they get Unsubscribed with PERMISSION_DENIED):
   * every member, or only those of one principal, on every node of the cluster. Returns how
   * many were removed on this node.
   */
  kick<P extends object>(channel: ChannelDef<P, DescMessage, any>, params: P, options?: { principalId?: string; reason?: string }): number;
  /**
   * Sends Goaway to the client of one session (its id is CallContext.sessionId): it should
   * reconnect and resume after `reconnectAfterMs`; the server closes the connection with 4000
   * after `closeInMs` (default 5 000). False when the session has no connection on this node.
   */
  goaway(sessionId: string, options?: { reason?: string; reconnectAfterMs?: number; closeInMs?: number }): boolean;
  /**
   * Removes a named principal's clients from this node for good: each connection is closed
   * with 4503, which ends its session and tells the client not to reconnect (PROTOCOL.md
   * 10.2). Returns how many connections were closed.
   */
  disconnect(principalId: string, options?: { reason?: string }): number;
}

/** A server as the application holds it, on any platform. */
export interface RunningServer extends ServerApi {
  /**
   * Stops accepting connections, sends every client a Goaway, lets running calls finish for up
   * to `deadlineMs` (default 10 000; 0 closes at once), then closes the rest with 1001.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

/** The application's view of a server core. */
export function serverApi(core: ServerCore): ServerApi {
  return {
    implement: (service, handlers) => core.implement(service, handlers),
    publish: (channel, params, message, options) => core.publish(channel, params, message, options),
    push: (event, principalId, message) => core.push(event, principalId, message),
    presence: (channel, params) => core.presence(channel.topic(params)),
    connectionsOf: (principalId) => core.connectionsOf(principalId),
    locate: (principalId) => core.locate(principalId),
    nodeId: core.nodeId,
    nodes: () => core.cluster?.liveNodes() ?? [],
    channels: (def) =>
      core.hub.census(def as unknown as ChannelDef).flatMap((c) => {
        const params = def.parse(c.channel);
        return params === undefined ? [] : [{ channel: c.channel, params, members: c.members }];
      }),
    get connectionCount() {
      return core.connections.size;
    },
    stats: () => ({
      connections: core.connections.size,
      sessions: core.sessions.size,
      channels: core.hub.census().length,
      idempotencyRecords: core.idempotency.size ?? 0,
      acksPending: Array.from(core.sessions.values()).reduce((n, s) => n + s.unacknowledged, 0),
      clusterNodes: core.cluster?.liveNodes().length ?? 0,
      counters: core.counters,
    }),
    kick: (channel, params, o = {}) => core.kick(channel.topic(params), o.principalId, o.reason ?? "kicked"),
    goaway: (sessionId, o = {}) => core.goaway(sessionId, o.reason ?? "rebalance", o.reconnectAfterMs ?? 0, o.closeInMs ?? core.limits.goawayCloseMs),
    disconnect: (principalId, o = {}) => core.disconnect(principalId, o.reason ?? "disconnected"),
  };
}
