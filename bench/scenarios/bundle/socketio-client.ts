// The same client with socket.io-client: an acknowledged emit, a room's events, a direct event.
import { io } from "socket.io-client";

const socket = io(`wss://${location.host}`, { auth: { token: "alice" }, transports: ["websocket"] });
socket.on("connect_error", (err) => console.error(err.message));
socket.emit("sendMessage", { roomId: "lobby", text: "hi" }, (r: { messageId: string }) => console.log(r.messageId));
socket.emit("join", "lobby");
socket.on("roomEvent", (ev: { text: string }) => console.log(ev.text));
socket.on("notice", (n: unknown) => console.log(n));
