import { randomBytes } from "node:crypto";
import { request } from "node:http";
import type { Socket } from "node:net";

export interface UpgradeTarget {
  readonly port: number;
  /** Path and query of the WebSocket endpoint. */
  readonly path: string;
  readonly protocol: string | undefined;
  /** Loopback source address, so that many connections do not run out of ephemeral ports. */
  readonly localAddress: string;
  /** Further request headers, such as Authorization. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Opens a WebSocket at the TCP level: Node's HTTP client performs the upgrade handshake and
 * hands over the raw socket. The bench clients frame and read on that socket themselves.
 * `extensions` is the server's Sec-WebSocket-Extensions answer (what it accepted).
 */
export function upgrade(target: UpgradeTarget): Promise<{ socket: Socket; head: Buffer; extensions: string | undefined }> {
  const headers: Record<string, string> = {
    Connection: "Upgrade",
    Upgrade: "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
  };
  if (target.protocol !== undefined) headers["Sec-WebSocket-Protocol"] = target.protocol;
  Object.assign(headers, target.headers);
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port: target.port,
      path: target.path,
      localAddress: target.localAddress,
      agent: false,
      headers,
    });
    req.once("upgrade", (res, socket, head) => {
      socket.setNoDelay(true);
      resolve({ socket: socket as Socket, head, extensions: res.headers["sec-websocket-extensions"] });
    });
    req.once("response", (res) => {
      res.resume();
      reject(new Error(`${target.path}: HTTP ${String(res.statusCode)} instead of 101`));
    });
    req.once("error", reject);
    req.end();
  });
}
