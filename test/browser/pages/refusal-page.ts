// A page that connects with the token in its URL and records what the client reports: every
// state change, every error event, and what happens to a subscription's ready promise.
import { connect, createClient, type ProtocastError } from "protocast";
import { ChatService } from "../../../generated/acme/chat/v1/chat_protocast.js";

export interface PageEvent {
  readonly kind: "state" | "error" | "ready_rejected";
  readonly at: number;
  readonly state?: string;
  readonly code?: number;
  readonly reason?: string;
  readonly closeCode?: number;
  readonly message?: string;
}

const events: PageEvent[] = [];
(window as unknown as { protocastEvents: PageEvent[] }).protocastEvents = events;
const started = performance.now();
const at = (): number => Math.round(performance.now() - started);
const describe = (e: ProtocastError): Partial<PageEvent> => ({ code: e.code, reason: e.reason, message: e.message, ...(e.closeCode === undefined ? {} : { closeCode: e.closeCode }) });

const token = new URLSearchParams(location.search).get("token") ?? "";
const conn = connect(`ws://${location.host}/protocast`, { token, reconnect: { baseMs: 100, capMs: 200 } });
conn.on("state", (s) => events.push({ kind: "state", at: at(), state: s.newState }));
conn.on("error", (e) => events.push({ kind: "error", at: at(), ...describe(e) }));
const sub = createClient(ChatService, conn).roomEvents({ roomId: "lobby" });
sub.ready.then(
  () => undefined,
  (e: ProtocastError) => events.push({ kind: "ready_rejected", at: at(), ...describe(e) }),
);
