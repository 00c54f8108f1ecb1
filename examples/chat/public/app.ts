// The chat page. It uses the generated ChatService client over the browser's WebSocket, or
// over the HTTP fallback where the WebSocket is blocked: the same client code a Node program
// would use.
import { connect, createClient, type ChannelMember, type ConnectOptions, type Connection, type ConnectionState, type TransportKind } from "protocast";
import type { NoticesResponse, RoomEventsResponse, Room } from "../../../generated/acme/chat/v1/chat_pb.js";
import { ChatService, type ChatServiceClient } from "../../../generated/acme/chat/v1/chat_protocast.js";

const USER_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** While someone keeps typing, "typing: true" is sent again at most this often. */
const TYPING_REFRESH_MS = 2_000;
/** After this long without a keystroke we say we stopped. */
const TYPING_IDLE_MS = 3_000;
/** Typing indicators travel at-most-once, so a "stopped" may be lost: others' indicators expire. */
const TYPING_EXPIRY_MS = 5_000;
const ROOMS_REFRESH_MS = 10_000;

function element<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page lacks #${id}`);
  return el as T;
}

const ui = {
  join: element<HTMLFormElement>("join"),
  joinUser: element<HTMLInputElement>("join-user"),
  joinRoom: element<HTMLInputElement>("join-room"),
  chat: element<HTMLElement>("chat"),
  roomTitle: element<HTMLElement>("room-title"),
  state: element<HTMLElement>("state"),
  transport: element<HTMLElement>("transport"),
  messages: element<HTMLOListElement>("messages"),
  typing: element<HTMLElement>("typing"),
  composer: element<HTMLFormElement>("composer"),
  text: element<HTMLInputElement>("text"),
  error: element<HTMLElement>("error"),
  members: element<HTMLUListElement>("members"),
  rooms: element<HTMLUListElement>("rooms"),
  notices: element<HTMLUListElement>("notices"),
};

function make(tag: string, className: string, text = ""): HTMLElement {
  const el = document.createElement(tag);
  if (className !== "") el.className = className;
  el.textContent = text;
  return el;
}

/**
 * How the page connects, from its URL: `transport=http` (or `websocket`, or both, comma
 * separated, in order) limits the transports the client tries; `wsTimeoutMs` is how long a
 * WebSocket may take to open before the fallback is tried; `probeMs` how often a page on the
 * fallback tries to move back to a WebSocket. Kept in room links so that they survive.
 */
const LINK_SETTINGS = ["transport", "wsTimeoutMs", "probeMs"] as const;
const TRANSPORT_KINDS: readonly TransportKind[] = ["websocket", "http"];

type LinkSettings = Pick<ConnectOptions, "transports" | "webSocketOpenTimeoutMs" | "upgradeProbeMs">;

function positiveMs(value: string | null): number | undefined {
  if (value === null || !/^[0-9]{1,7}$/.test(value)) return undefined;
  const n = Number(value);
  return n > 0 ? n : undefined;
}

/** The connect() options the URL asks for; anything missing or malformed keeps its default. */
function linkSettings(query: URLSearchParams): LinkSettings {
  const named = (query.get("transport") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s): s is TransportKind => (TRANSPORT_KINDS as readonly string[]).includes(s));
  const wsTimeout = positiveMs(query.get("wsTimeoutMs"));
  const probe = positiveMs(query.get("probeMs"));
  return {
    ...(named.length > 0 ? { transports: Array.from(new Set(named)) } : {}),
    ...(wsTimeout !== undefined ? { webSocketOpenTimeoutMs: wsTimeout } : {}),
    ...(probe !== undefined ? { upgradeProbeMs: probe } : {}),
  };
}

function roomLink(user: string, room: string): string {
  const link = new URLSearchParams({ user, room });
  const current = new URLSearchParams(location.search);
  for (const name of LINK_SETTINGS) {
    const value = current.get(name);
    if (value !== null) link.set(name, value);
  }
  return `?${link.toString()}`;
}

function showError(e: unknown): void {
  ui.error.textContent = e instanceof Error ? e.message : String(e);
}

const TRANSPORT_LABEL: Record<string, string> = { websocket: "WebSocket", http: "HTTP fallback", custom: "custom" };

/** The connection state, and while open the transport it travels over and its session. */
function showState(conn: Connection): void {
  const state: ConnectionState = conn.state;
  ui.state.dataset["state"] = state;
  ui.state.textContent = state;
  const kind = state === "open" ? (conn.transportKind ?? "") : "";
  ui.transport.dataset["transport"] = kind;
  ui.transport.textContent = TRANSPORT_LABEL[kind] ?? "";
  ui.transport.hidden = kind === "";
  if (state === "open") ui.state.dataset["session"] = conn.sessionId;
}

/** Keeps the view pinned to the newest message unless the reader scrolled up. */
function append(el: HTMLElement): void {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(el);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function addMessage(m: RoomEventsResponse, me: string): void {
  const li = make("li", m.author === me ? "message mine" : "message");
  li.dataset["messageId"] = m.messageId;
  li.dataset["author"] = m.author;
  li.dataset["sentAt"] = String(m.sentAtMs);
  const meta = make("div", "meta");
  const when = new Date(Number(m.sentAtMs)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.append(make("span", "author", m.author), make("time", "", when));
  li.append(meta, make("div", "text", m.text));
  append(li);
}

function addNote(text: string): void {
  append(make("li", "note", text));
}

function renderMembers(members: ReadonlyMap<string, ChannelMember>, me: string): void {
  // One line per user, however many tabs or devices they have open.
  const counts = new Map<string, number>();
  for (const m of members.values()) counts.set(m.principal, (counts.get(m.principal) ?? 0) + 1);
  const names = Array.from(counts.keys()).sort((a, b) => a.localeCompare(b));
  ui.members.replaceChildren(
    ...names.map((name) => {
      const n = counts.get(name) ?? 1;
      const li = make("li", name === me ? "me" : "", `${name}${name === me ? " (you)" : ""}${n > 1 ? ` ×${n}` : ""}`);
      li.dataset["principal"] = name;
      return li;
    }),
  );
}

function renderRooms(rooms: readonly Room[], user: string, current: string): void {
  const list = rooms.some((r) => r.roomId === current) ? rooms : [{ roomId: current, members: 0 }, ...rooms];
  ui.rooms.replaceChildren(
    ...list.map((r) => {
      const li = document.createElement("li");
      li.dataset["roomId"] = r.roomId;
      const a = make("a", "", `#${r.roomId}`) as HTMLAnchorElement;
      a.href = roomLink(user, r.roomId);
      li.append(a, make("span", "count", r.members > 0 ? ` ${r.members} active` : ""));
      return li;
    }),
  );
}

function addNotice(n: NoticesResponse): void {
  const li = make("li", "", n.text);
  li.dataset["roomId"] = n.roomId;
  ui.notices.prepend(li);
}

function renderTyping(typists: ReadonlyMap<string, unknown>): void {
  const names = Array.from(typists.keys()).sort((a, b) => a.localeCompare(b));
  ui.typing.dataset["users"] = names.join(" ");
  if (names.length === 0) ui.typing.textContent = "";
  else if (names.length === 1) ui.typing.textContent = `${names[0]} is typing…`;
  else if (names.length === 2) ui.typing.textContent = `${names[0]} and ${names[1]} are typing…`;
  else ui.typing.textContent = `${names.length} people are typing…`;
}

/** Watches other people's typing indicators; our own are skipped. */
async function followTyping(chat: ChatServiceClient, room: string, me: string): Promise<void> {
  const typists = new Map<string, ReturnType<typeof setTimeout>>();
  for await (const t of chat.typing({ roomId: room })) {
    if (t.user === me) continue;
    clearTimeout(typists.get(t.user));
    if (t.typing) {
      typists.set(
        t.user,
        setTimeout(() => {
          typists.delete(t.user);
          renderTyping(typists);
        }, TYPING_EXPIRY_MS),
      );
    } else {
      typists.delete(t.user);
    }
    renderTyping(typists);
  }
}

/** Tells the room when we type, without sending a frame per keystroke. */
function typingReporter(chat: ChatServiceClient, room: string): { keystroke(): void; stop(): void } {
  let lastSent = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const send = (typing: boolean): void => {
    chat.publishTyping({ roomId: room }, { typing }).catch(() => undefined); // cheap to lose, by design
  };
  const stop = (): void => {
    clearTimeout(idle);
    idle = undefined;
    if (lastSent === 0) return;
    lastSent = 0;
    send(false);
  };
  return {
    keystroke() {
      const now = Date.now();
      if (now - lastSent >= TYPING_REFRESH_MS) {
        lastSent = now;
        send(true);
      }
      clearTimeout(idle);
      idle = setTimeout(stop, TYPING_IDLE_MS);
    },
    stop,
  };
}

function start(user: string, room: string): void {
  ui.join.hidden = true;
  ui.chat.hidden = false;
  ui.roomTitle.textContent = `#${room} · ${user}`;
  document.title = `#${room} · Protocast chat`;
  history.replaceState(null, "", roomLink(user, room));

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const conn = connect(`${scheme}//${location.host}/protocast`, { token: user, ...linkSettings(new URLSearchParams(location.search)) });
  showState(conn);
  conn.on("state", ({ oldState, newState }) => {
    showState(conn);
    if (oldState === "open" && newState === "reconnecting") addNote("Connection lost; reconnecting…");
    if (oldState === "reconnecting" && newState === "open") addNote("Reconnected.");
    // An attempt's error stays up while the client retries; a working connection clears it.
    if (newState === "open") ui.error.textContent = "";
  });
  conn.on("error", showError);
  const chat = createClient(ChatService, conn);

  let roomsDue: ReturnType<typeof setTimeout> | undefined;
  const refreshRooms = (): void => {
    clearTimeout(roomsDue);
    roomsDue = undefined;
    if (conn.state !== "open") return;
    chat.listRooms({}).then((r) => renderRooms(r.rooms, user, room), () => undefined);
  };
  /** Coalesces refreshes: a busy room asks for the list at most once per second. */
  const refreshRoomsSoon = (): void => {
    roomsDue ??= setTimeout(refreshRooms, 1_000);
  };
  renderRooms([], user, room);
  setInterval(refreshRooms, ROOMS_REFRESH_MS);

  const sub = chat.roomEvents({ roomId: room });
  sub.ready.then(() => {
    renderMembers(sub.members, user);
    refreshRooms();
  }, showError);
  sub.on("presence", () => renderMembers(sub.members, user));
  sub.on("gap", (g) =>
    addNote(
      // A new epoch numbers messages afresh: its range says nothing about what this page missed.
      g.reason === "epoch_changed"
        ? "The server started this room's history afresh; messages sent while you were away may be missing."
        : `Messages ${g.fromOffset}–${g.toOffset} could not be recovered (${g.reason}).`,
    ),
  );
  void (async () => {
    for await (const m of sub) {
      addMessage(m, user);
      refreshRoomsSoon();
    }
  })().catch(showError);

  followTyping(chat, room, user).catch(showError);
  void (async () => {
    for await (const n of chat.notices()) addNotice(n);
  })().catch(showError);

  const typing = typingReporter(chat, room);
  ui.text.addEventListener("input", () => (ui.text.value === "" ? typing.stop() : typing.keystroke()));
  ui.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = ui.text.value;
    if (text.trim() === "") return;
    ui.text.value = "";
    typing.stop();
    // Sending is idempotent: while reconnecting the call waits and is sent once, not twice.
    chat.sendMessage({ roomId: room, text }).then(
      () => {
        ui.error.textContent = "";
      },
      (e: unknown) => {
        if (ui.text.value === "") ui.text.value = text;
        showError(e);
      },
    );
  });
  ui.text.focus();
}

const query = new URLSearchParams(location.search);
ui.joinUser.value = query.get("user") ?? "";
ui.joinRoom.value = query.get("room") ?? "lobby";
ui.join.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const user = ui.joinUser.value.trim();
  const room = ui.joinRoom.value.trim();
  if (USER_NAME.test(user) && ROOM_ID.test(room)) start(user, room);
});
if (USER_NAME.test(ui.joinUser.value) && ROOM_ID.test(ui.joinRoom.value)) start(ui.joinUser.value, ui.joinRoom.value);
else ui.joinUser.focus();
