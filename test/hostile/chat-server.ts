/** The chat service on a real server, as the hostile tests attack it. */
import { createClient, type ProtocastServer, type ServerOptions } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, type Harness } from "../support/harness.js";

/** Implements ChatService: sendMessage publishes to the room and answers with who sent it. */
export function implementChat(server: ProtocastServer): void {
  let n = 0;
  server.implement(ChatService, {
    async sendMessage(req, ctx) {
      const id = `${ctx.principal.id}:${++n}`;
      await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId || "lobby" }, { messageId: id, author: ctx.principal.id, text: req.text });
      return { messageId: id, sentAtMs: BigInt(Date.now()) };
    },
    listRooms: () => ({ rooms: [] }),
    publishTyping: (_params, message, ctx) => ({ user: ctx.principal.id, typing: message.typing }),
  });
}

export function startChat(options: ServerOptions = {}): Promise<Harness> {
  return startHarness(options, implementChat);
}

/** A normal client does a round trip: proof that the server still serves after an attack. */
export async function normalClientWorks(h: Harness, token?: string): Promise<void> {
  const conn = h.client(token === undefined ? { reconnect: false } : { token, reconnect: false });
  try {
    const chat = createClient(ChatService, conn);
    const reply = await chat.sendMessage({ roomId: "health", text: "still here" });
    if (reply.messageId === "") throw new Error("empty reply");
  } finally {
    await conn.close();
  }
}
