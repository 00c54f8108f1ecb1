/**
 * One RPC connection per peer, each through the client an application would use: the
 * Protocast generated client, a ws WebSocket with a request id in front of the payload, and
 * socket.io-client's emitWithAck.
 */
import WebSocket from "ws";
import { io } from "socket.io-client";
import { connect, createClient } from "../../runtime/node.js";
import { BenchService } from "../../generated/acme/bench/v1/bench_protocast.js";
import type { Peer } from "../lib/messages.js";
import { payloadBytes, payloadText } from "../lib/payload.js";

export interface RpcConnection {
  /** One unary call carrying the payload; resolves with the reply. */
  call(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * BENCH_RPC_METADATA=1 gives every Protocast call two metadata entries, a W3C traceparent and a
 * tenant, as connection defaults: the cost of metadata on the call path (README, "Metadata and
 * tracing"). The other peers have no such thing and are unchanged.
 */
const METADATA = process.env["BENCH_RPC_METADATA"] === "1" ? { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tenant: "acme" } : undefined;

async function protocast(port: number, size: number): Promise<RpcConnection> {
  const conn = connect(`ws://127.0.0.1:${port}/protocast`, { reconnect: false, ...(METADATA === undefined ? {} : { metadata: METADATA }) });
  await conn.opened();
  const client = createClient(BenchService, conn);
  const request = { payload: payloadBytes(size) };
  return { call: () => client.echo(request), close: () => conn.close() };
}

async function ws(port: number, size: number): Promise<RpcConnection> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  const pending = new Map<number, (data: Buffer) => void>();
  socket.on("message", (data: Buffer) => {
    const id = data.readUInt32BE(0);
    const resolve = pending.get(id);
    pending.delete(id);
    resolve?.(data);
  });
  const payload = payloadBytes(size);
  let nextId = 0;
  return {
    call() {
      const id = ++nextId >>> 0;
      const message = Buffer.allocUnsafe(4 + payload.length);
      message.writeUInt32BE(id, 0);
      message.set(payload, 4);
      socket.send(message, { binary: true });
      return new Promise((resolve) => pending.set(id, resolve));
    },
    close: async () => socket.close(),
  };
}

async function socketio(port: number, size: number): Promise<RpcConnection> {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const text = payloadText(size);
  return {
    call: () => socket.emitWithAck("echo", text),
    close: async () => void socket.close(),
  };
}

export const rpcClients: Readonly<Record<Peer, (port: number, payloadBytes: number) => Promise<RpcConnection>>> = { protocast, ws, socketio };
