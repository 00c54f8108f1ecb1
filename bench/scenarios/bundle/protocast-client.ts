// A browser client as an application writes it: a call, a channel, a direct event.
import { connect, createClient } from "protocast";
import { ChatService } from "../../../generated/acme/chat/v1/chat_protocast.js";

const conn = connect(`wss://${location.host}/protocast`, { token: "alice" });
const chat = createClient(ChatService, conn);
conn.on("error", (err) => console.error(err.message));
void chat.sendMessage({ roomId: "lobby", text: "hi" }).then((r) => console.log(r.messageId));
void (async () => {
  for await (const ev of chat.roomEvents({ roomId: "lobby" })) console.log(ev.text);
})();
void (async () => {
  for await (const n of chat.notices()) console.log(n);
})();
