import type { Duplex } from "node:stream";
import { createServer, type ProtocastServer, type ServerOptions } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";

/** Events of the compression tests: large and repetitive, as JSON-like payloads are. */
export const PATTERN = '{"user":"alice","status":"online","room":"lobby"},';
export const REPEAT = 160; // about 8 KB of text per event
export const EVENTS = 20;

/**
 * A chat server whose sendMessage publishes EVENTS large events to the caller's room, and a
 * count of the bytes it wrote to its upgraded sockets (what went over the wire).
 */
export function compressionServer(options: ServerOptions): { server: ProtocastServer; bytesWritten(): number } {
  const server = createServer({ logger: () => undefined, authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }), ...options });
  const sockets: Duplex[] = [];
  server.http.on("upgrade", (_req, socket: Duplex) => sockets.push(socket));
  server.implement(ChatService, {
    async sendMessage(req, ctx) {
      for (let i = 0; i < EVENTS; i++) {
        await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { messageId: String(i), author: ctx.principal.id, text: `${i}:${req.text.repeat(REPEAT)}` });
      }
      return { messageId: "published" };
    },
    listRooms: () => ({ rooms: [] }),
  });
  return { server, bytesWritten: () => sockets.reduce((n, s) => n + ((s as unknown as { bytesWritten?: number }).bytesWritten ?? 0), 0) };
}
