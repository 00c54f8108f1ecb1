/**
 * A subscribe to a channel the user may not read gets PERMISSION_DENIED, and not one frame of
 * that channel (event, presence, history replay) ever reaches that user's socket, while a
 * member receives every event. Checked on the raw socket, below anything a client library
 * might filter, and through the generated client.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import type { Envelope } from "../../runtime/wire/envelope.js";
import { until, type Harness } from "../support/harness.js";
import { startChat } from "./chat-server.js";
import { openSession, type RawSession } from "./raw-session.js";

const ROOM = "acme.chat.v1.ChatService/RoomEvents";
const TYPING = "acme.chat.v1.ChatService/Typing";
const SECRET = "room/secret";
const EVENTS = 50;

/** Frames that carry something of `channel`. */
function framesOf(received: readonly Envelope[], channel: string): Envelope[] {
  return received.filter((e) => {
    const f = e.frame;
    return (f.case === "event" || f.case === "presence" || f.case === "subscribed" || f.case === "unsubscribed") && f.value.channel === channel;
  });
}

describe("subscribing to a channel one may not read", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startChat({
      // eve holds no chat scope; mallory holds it, but the authorize hook keeps room/secret to bob.
      authenticate: (req) => ({ id: req.token ?? "nobody", scopes: req.token === "eve" ? ["profile"] : ["chat"] }),
      authorize: ({ principal, action, channel }) => action === "call" || channel !== SECRET || principal.id === "bob",
    });
  });
  afterAll(() => h.close());

  async function intruder(token: string): Promise<RawSession> {
    const s = await openSession(h.port, { headers: [["Authorization", `Bearer ${token}`]] });
    // Ask for the live channel and its whole history, and for the typing channel of the room too.
    s.sendFrame({ case: "subscribe", value: { id: 1, method: ROOM, channel: SECRET, recover: true, epoch: "", offset: 0 } }, 1);
    s.sendFrame({ case: "subscribe", value: { id: 2, method: TYPING, channel: "typing/secret", recover: false, epoch: "", offset: 0 } }, 2);
    return s;
  }

  it("answers PERMISSION_DENIED and delivers nothing of the channel, for a missing scope and for a refusing authorize hook", async () => {
    const bob = createClient(ChatService, h.client({ token: "bob" }));
    const member = bob.roomEvents({ roomId: "secret" });
    await member.ready;
    // History exists before the intruders arrive: a recover must not replay it to them.
    for (let i = 0; i < 10; i++) await bob.sendMessage({ roomId: "secret", text: `before ${i}` });

    const eve = await intruder("eve");
    const mallory = await intruder("mallory");
    for (const s of [eve, mallory]) await until(() => s.received.filter((e) => e.frame.case === "error").length >= (s === eve ? 2 : 1), "the refusals");
    // Only bob is a member (breaking out of the reader below unsubscribes him).
    expect(h.server.channels(ChatService.channels.roomEvents).find((c) => c.channel === SECRET)?.members.map((m) => m.principal)).toEqual(["bob"]);

    const got: string[] = [];
    const reading = (async () => {
      for await (const ev of member) {
        got.push(ev.text);
        if (got.length === 10 + EVENTS) break;
      }
    })();
    for (let i = 0; i < EVENTS; i++) await h.server.publish(ChatService.channels.roomEvents, { roomId: "secret" }, { text: `after ${i}`, author: "server" });
    await reading;
    // One more round trip on each intruder's connection, so anything in flight has arrived.
    for (const s of [eve, mallory]) {
      s.sendFrame({ case: "ping", value: { sentAtMs: 99 } });
      await until(() => s.received.some((e) => e.frame.case === "pong" && e.frame.value.sentAtMs === 99), "a pong");
    }

    expect(got).toHaveLength(10 + EVENTS);
    const refusals = (s: RawSession): unknown[] =>
      s.received.flatMap((e) => (e.frame.case === "error" ? [{ id: e.frame.value.id, code: e.frame.value.code }] : []));
    expect(refusals(eve)).toEqual([
      { id: 1, code: Code.PermissionDenied },
      { id: 2, code: Code.PermissionDenied },
    ]);
    expect(refusals(mallory)).toEqual([{ id: 1, code: Code.PermissionDenied }]);
    expect(framesOf(eve.received, SECRET)).toEqual([]);
    expect(framesOf(mallory.received, SECRET)).toEqual([]);
    expect(eve.received.some((e) => e.frame.case === "event" || e.frame.case === "presence")).toBe(false);
    expect(mallory.received.some((e) => e.frame.case === "event" || e.frame.case === "presence")).toBe(false);
    eve.raw.close();
    mallory.raw.close();
  });

  it("rejects the generated client's subscription with PERMISSION_DENIED", async () => {
    const eve = createClient(ChatService, h.client({ token: "eve" }));
    const sub = eve.roomEvents({ roomId: "secret" });
    await expect(sub.ready).rejects.toMatchObject({ code: Code.PermissionDenied });
    // Nor may eve post into it or learn of it through a call.
    await expect(eve.sendMessage({ roomId: "secret", text: "let me in" })).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});
