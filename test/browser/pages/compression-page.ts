// Page of the compression test: asks the server for large, repetitive channel events and
// reports what arrived, so the test can check them and the bytes the server wrote.
import { connect, createClient } from "protocast";
import { ChatService } from "../../../generated/acme/chat/v1/chat_protocast.js";

export interface CompressionResult {
  readonly count: number;
  readonly correct: boolean;
  readonly reply: string;
}

const params = new URLSearchParams(location.search);
const conn = connect(params.get("url") ?? "", { token: "reader" });
const chat = createClient(ChatService, conn);
const events = chat.roomEvents({ roomId: "big" });
const expected = Number(params.get("events") ?? "0");
void (async () => {
  await events.ready;
  const reply = await chat.sendMessage({ roomId: "big", text: params.get("pattern") ?? "" });
  let count = 0;
  let correct = true;
  for await (const ev of events) {
    if (ev.text !== `${count}:${(params.get("pattern") ?? "").repeat(Number(params.get("repeat") ?? "1"))}`) correct = false;
    if (++count >= expected) break;
  }
  (window as unknown as { result: CompressionResult }).result = { count, correct, reply: reply.messageId };
  conn.close();
})();
