import { randomUUID } from "node:crypto";
import { Code, ProtocastError } from "protocast";
import { ChatService, type ChatServiceHandlers } from "../../generated/acme/chat/v1/chat_protocast.js";

/** Room ids the demo accepts: short, URL-safe, and never containing the "/" of channel names. */
export const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Longest message, in characters (code points), as chat.proto documents. */
export const MAX_TEXT_CHARS = 2000;
/** "@name" mentions; names follow the same rule as the demo's user names. */
const MENTION = /@([A-Za-z0-9_-]{1,32})/g;

/** A message the server accepted, with where it landed in its room's channel. */
export interface PostedMessage {
  readonly roomId: string;
  readonly messageId: string;
  readonly author: string;
  readonly text: string;
  readonly sentAtMs: number;
  readonly epoch: string;
  readonly offset: number;
}

/** The chat's server side: handlers plus the little state the demo keeps. */
export interface ChatApp {
  readonly handlers: ChatServiceHandlers;
  /** Every accepted message, in the order its publish completed. */
  readonly posted: readonly PostedMessage[];
  /** Feed it the server's connection log ("connect"/"disconnect" records) so listRooms knows who is online. */
  onConnectionLog(record: { readonly event: string; readonly clientId?: string; readonly principal?: string }): void;
}

/**
 * Builds the ChatService handlers.
 *
 * Room member counts: the server's public API does not expose who subscribed to a channel,
 * so listRooms counts, per room, the users who posted or typed there and still have a
 * connection open. A reader who never wrote is not counted; the page's member list, fed by
 * the channel's presence, is the exact one.
 */
export function createChatApp(options: { now?: () => number } = {}): ChatApp {
  const now = options.now ?? Date.now;
  const posted: PostedMessage[] = [];
  /** Open connections (client ids) per principal. */
  const online = new Map<string, Set<string>>();
  /** Users seen writing in each room. */
  const writers = new Map<string, Set<string>>();

  const noteWriter = (roomId: string, user: string): void => {
    let set = writers.get(roomId);
    if (set === undefined) writers.set(roomId, (set = new Set()));
    set.add(user);
  };

  const handlers: ChatServiceHandlers = {
    async sendMessage(request, context) {
      const { roomId, text } = request;
      if (!ROOM_ID.test(roomId)) {
        throw new ProtocastError(Code.InvalidArgument, "room id must be 1-64 characters of letters, digits, \"_\" or \"-\"");
      }
      if (text.trim() === "") throw new ProtocastError(Code.InvalidArgument, "message text is empty");
      const chars = [...text].length;
      if (chars > MAX_TEXT_CHARS) {
        throw new ProtocastError(Code.InvalidArgument, `message text has ${chars} characters; at most ${MAX_TEXT_CHARS} are allowed`);
      }
      const author = context.principal.id;
      const messageId = randomUUID();
      const sentAtMs = now();
      const at = await context.publish(ChatService.channels.roomEvents, { roomId }, { messageId, author, text, sentAtMs: BigInt(sentAtMs) });
      posted.push({ roomId, messageId, author, text, sentAtMs, epoch: at.epoch, offset: at.offset });
      noteWriter(roomId, author);
      for (const name of mentionedUsers(text)) {
        if (name === author) continue;
        context.push(ChatService.events.notices, name, { text: `${author} mentioned you in #${roomId}: ${text}`, roomId });
      }
      return { messageId, sentAtMs: BigInt(sentAtMs) };
    },

    listRooms() {
      const rooms = [];
      for (const [roomId, users] of writers) {
        let members = 0;
        for (const user of users) if (online.has(user)) members++;
        if (members > 0) rooms.push({ roomId, members });
      }
      rooms.sort((a, b) => b.members - a.members || a.roomId.localeCompare(b.roomId));
      return { rooms };
    },

    // Clients publish typing indicators themselves; the server signs them with the
    // publisher's identity so nobody can type under another name.
    publishTyping(params, message, context) {
      noteWriter(params.roomId, context.principal.id);
      return { user: context.principal.id, typing: message.typing };
    },
  };

  return {
    handlers,
    posted,
    onConnectionLog({ event, clientId, principal }) {
      if (clientId === undefined || principal === undefined) return;
      let set = online.get(principal);
      if (event === "connect") {
        if (set === undefined) online.set(principal, (set = new Set()));
        set.add(clientId);
      } else if (event === "disconnect" && set !== undefined) {
        // A connection that never finished its handshake was never added; deleting is a no-op.
        set.delete(clientId);
        if (set.size === 0) online.delete(principal);
      }
    },
  };
}

/** Distinct user names mentioned as "@name" in a text, in order of first mention. */
export function mentionedUsers(text: string): string[] {
  return Array.from(new Set(Array.from(text.matchAll(MENTION), (m) => m[1] ?? "")));
}
