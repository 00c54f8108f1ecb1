import { Code, ProtocastError, createServer } from "protocast/node";
import { NotesService } from "./gen/notes/v1/notes_protocast.js";

const server = createServer({
  authenticate: (req) => {
    const token = req.token ?? "";
    if (!token.startsWith("good-")) throw new ProtocastError(Code.Unauthenticated, "token must start with good-");
    return { id: token.slice(5), scopes: ["notes"] };
  },
});

let count = 0;
const runs = new Map<string, number>();
server.implement(NotesService, {
  async addNote(req, ctx) {
    const number = ++count;
    runs.set(ctx.idempotencyKey, (runs.get(ctx.idempotencyKey) ?? 0) + 1);
    await ctx.publish(NotesService.channels.boardEvents, { boardId: req.boardId }, { number, text: req.text, author: ctx.principal.id });
    ctx.push(NotesService.events.alerts, ctx.principal.id, { text: `note ${number} added` });
    return { number };
  },
});

const { port } = await server.listen(Number(process.env["PORT"] ?? 0), "127.0.0.1");
console.log(`listening on ${port}`);
process.on("SIGTERM", () => void server.close({ deadlineMs: 500 }).then(() => process.exit(0)));
