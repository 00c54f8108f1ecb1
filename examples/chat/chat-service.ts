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
}

/** Who is in each room right now: the server's view of the room channels on this node. */
export type RoomCensus = () => readonly { readonly roomId: string; readonly members: number }[];

/**
 * Builds the ChatService handlers. `rooms` tells listRooms who is in which room; the server
 * wires it to its channel census.
 */
export function createChatApp(options: { now?: () => number; rooms?: RoomCensus } = {}): ChatApp {
  const now = options.now ?? Date.now;
  const census = options.rooms ?? (() => []);
  const posted: PostedMessage[] = [];

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
      for (const name of mentionedUsers(text)) {
        if (name === author) continue;
        context.push(ChatService.events.notices, name, { text: `${author} mentioned you in #${roomId}: ${text}`, roomId });
      }
      return { messageId, sentAtMs: BigInt(sentAtMs) };
    },

    listRooms() {
      const rooms = census().filter((r) => r.members > 0);
      rooms.sort((a, b) => b.members - a.members || a.roomId.localeCompare(b.roomId));
      return { rooms };
    },

    // Clients publish typing indicators themselves; the server signs them with the
    // publisher's identity so nobody can type under another name.
    publishTyping(_params, message, context) {
      return { user: context.principal.id, typing: message.typing };
    },
  };

  return {
    handlers,
    posted,
  };
}

/** Distinct user names mentioned as "@name" in a text, in order of first mention. */
export function mentionedUsers(text: string): string[] {
  return Array.from(new Set(Array.from(text.matchAll(MENTION), (m) => m[1] ?? "")));
}
