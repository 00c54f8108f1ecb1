// A page with a persistent outbox. Its first load makes `calls` exactly-once calls, each with
// metadata (the load's number as the connection's default, the call's text as its own); every
// load reads the calls an earlier load left in IndexedDB and reports their outcomes. Each event
// goes to the test at once through window.outboxReport (a function the test exposes), so that
// nothing depends on the page surviving a reload.
import { connect, createClient, indexedDbOutbox } from "protocast";
import { ChatService } from "../../../generated/acme/chat/v1/chat_protocast.js";

export type OutboxPageEvent =
  | { readonly kind: "load"; readonly load: number }
  | { readonly kind: "answered"; readonly load: number; readonly text: string; readonly messageId: string }
  | { readonly kind: "failed"; readonly load: number; readonly text: string; readonly message: string }
  | { readonly kind: "recovered"; readonly load: number; readonly text: string; readonly key: string; readonly outcome: string; readonly messageId: string }
  | { readonly kind: "recovered-end"; readonly load: number; readonly ms: number }
  /** The first `calls` calls are made and in the store. */
  | { readonly kind: "issued"; readonly load: number; readonly calls: number }
  /** What earlier loads of the tab recorded as delivered, read back from sessionStorage. */
  | { readonly kind: "delivered-log"; readonly load: number; readonly texts: readonly string[] }
  | { readonly kind: "outbox-error"; readonly load: number; readonly reason: string; readonly message: string };

const report = (e: OutboxPageEvent): void => void (window as unknown as { outboxReport(e: OutboxPageEvent): Promise<void> }).outboxReport(e);
const q = new URLSearchParams(location.search);
const started = performance.now();
// sessionStorage lives as long as the tab, across reloads: it tells the first load from the others.
const load = Number(sessionStorage.getItem("loads") ?? "0") + 1;
sessionStorage.setItem("loads", String(load));
report({ kind: "load", load });
// The application's own record of the outcomes it received, written synchronously as each
// arrives: a report sent to the test just as the page unloads can be lost on the way, this cannot.
const delivered = (): string[] => JSON.parse(sessionStorage.getItem("delivered") ?? "[]") as string[];
const noteDelivered = (text: string): void => sessionStorage.setItem("delivered", JSON.stringify([...delivered(), text]));
report({ kind: "delivered-log", load, texts: delivered() });

const conn = connect(q.get("url")!, { token: q.get("token")!, outbox: indexedDbOutbox(q.get("outbox")!), metadata: { "x-load": String(load) }, reconnect: { baseMs: 100, capMs: 300 } });
conn.outbox.on("error", (e) => report({ kind: "outbox-error", load, reason: e.reason, message: e.message }));
const chat = createClient(ChatService, conn);

void (async () => {
  for await (const r of chat.$recovered()) {
    const messageId = r.outcome.kind === "reply" ? r.outcome.response.messageId : r.outcome.error.message;
    report({ kind: "recovered", load, text: r.request.text, key: r.idempotencyKey, outcome: r.outcome.kind, messageId });
  }
  report({ kind: "recovered-end", load, ms: Math.round(performance.now() - started) });
})();

if (load === 1) {
  // The first `first` calls at once; the rest when the test calls window.makeTheRest().
  const run = q.get("run")!;
  const calls = Number(q.get("calls"));
  const first = Number(q.get("first") ?? calls);
  const make = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) {
      const text = `${run}-${i}`;
      chat.sendMessage({ roomId: "outbox", text }, { metadata: { "x-call": text } }).then(
        (r) => {
          noteDelivered(text);
          report({ kind: "answered", load, text, messageId: r.messageId });
        },
        (e: unknown) => report({ kind: "failed", load, text, message: String(e) }),
      );
    }
    // Only a call in the store survives the reload: wait for the writes before saying so.
    await conn.outbox.stored();
    report({ kind: "issued", load, calls: to });
  };
  void make(0, first);
  (window as unknown as { makeTheRest(): Promise<void> }).makeTheRest = () => make(first, calls);
}
