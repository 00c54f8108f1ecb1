// The files `protocast init` writes: a buf workspace that imports Protocast's options from the
// installed package, a generation template, a sample service, and a server and client for it.

export interface TemplateOptions {
  /** Where Protocast's proto module is, relative to the project (from buf.yaml). */
  readonly protoModule: string;
  /** The team's proto folder. */
  readonly protoDir: string;
  /** Where generated code goes. */
  readonly outDir: string;
}

export function bufYaml(o: TemplateOptions): string {
  return `# buf workspace: your .proto files, and Protocast's options from the installed package
# (so that \`import "protocast/v1/options.proto";\` resolves without copying it).
version: v2
modules:
  - path: ${o.protoDir}
  - path: ${o.protoModule}
lint:
  use:
    - STANDARD
  ignore:
    - ${o.protoModule}
breaking:
  use:
    - FILE
`;
}

export function bufGenYaml(o: TemplateOptions): string {
  return `# Code generation, run by \`protocast gen\` (or \`npx buf generate\`): protobuf-es writes the
# messages (*_pb.ts), Protocast the typed clients and handlers (*_protocast.ts).
version: v2
inputs:
  - directory: ${o.protoDir}
plugins:
  - local: protoc-gen-es
    out: ${o.outDir}
    include_imports: false
    opt:
      - target=ts
      - import_extension=js
      # Protocast's options come compiled with the package: import them from there.
      - rewrite_imports=./protocast/v1/*_pb.js:protocast
  - local: protoc-gen-protocast
    out: ${o.outDir}
    strategy: all
    opt:
      - target=ts
      - import_extension=js
`;
}

export const SAMPLE_PROTO_PATH = "todo/v1/todo.proto";

export const sampleProto = `syntax = "proto3";

package todo.v1;

import "protocast/v1/options.proto";

// Shared to-do lists.
service TodoService {
  option (protocast.v1.service) = {
    scope: "todo"
    timeout_ms: 5000
  };

  // Adds an item. Retries with the same idempotency key never add twice.
  rpc AddItem(AddItemRequest) returns (AddItemResponse) {
    option (protocast.v1.call) = {delivery: DELIVERY_EXACTLY_ONCE};
  }

  // Changes to one list, recoverable after a reconnect, with who is looking at it.
  rpc ListEvents(ListEventsRequest) returns (stream ListEventsResponse) {
    option (protocast.v1.channel) = {
      pattern: "list/{list_id}"
      delivery: DELIVERY_AT_LEAST_ONCE
      presence: true
      history_size: 1000
    };
  }

  // Sent to one user, wherever they are connected.
  rpc Reminders(RemindersRequest) returns (stream RemindersResponse) {
    option (protocast.v1.event) = {delivery: DELIVERY_AT_LEAST_ONCE};
  }
}

message AddItemRequest {
  string list_id = 1;
  string text = 2;
}

message AddItemResponse {
  string item_id = 1;
}

message ListEventsRequest {
  string list_id = 1;
}

message ListEventsResponse {
  string item_id = 1;
  string text = 2;
  string author = 3;
}

message RemindersRequest {}

message RemindersResponse {
  string text = 1;
}
`;

/** Import path of the generated sample, from src/. */
function genImport(o: TemplateOptions): string {
  const fromSrc = o.outDir.startsWith("src/") ? `./${o.outDir.slice(4)}` : `../${o.outDir}`;
  return `${fromSrc}/todo/v1/todo_protocast.js`;
}

export function sampleServer(o: TemplateOptions): string {
  return `// A Protocast server for the sample TodoService: \`npm run build && npm start\`.
import { Code, ProtocastError, createServer } from "protocast/node";
import { TodoService } from "${genImport(o)}";

const port = Number(process.env["PORT"] ?? 8080);
const host = process.env["HOST"] ?? "127.0.0.1";

const server = createServer({
  // The sample accepts "dev-<name>" tokens; put your own verification here.
  authenticate: (req) => {
    const token = req.token ?? "";
    if (!token.startsWith("dev-")) throw new ProtocastError(Code.Unauthenticated, "expected a dev-<name> token");
    return { id: token.slice(4), scopes: ["todo"] };
  },
});

let next = 0;
server.implement(TodoService, {
  async addItem(req, ctx) {
    const itemId = \`item-\${++next}\`;
    await ctx.publish(TodoService.channels.listEvents, { listId: req.listId }, { itemId, text: req.text, author: ctx.principal.id });
    ctx.push(TodoService.events.reminders, ctx.principal.id, { text: \`added "\${req.text}"\` });
    return { itemId };
  },
});

await server.listen(port, host);
console.log(\`todo server on ws://\${host}:\${port}/protocast\`);
`;
}

export function sampleClient(o: TemplateOptions): string {
  return `// A client of the sample TodoService: \`node dist/client.js\` while the server runs.
// The same code runs in a browser (import "protocast" resolves to the browser build there).
import { connect, createClient } from "protocast";
import { TodoService } from "${genImport(o)}";

const url = process.env["PROTOCAST_URL"] ?? "ws://127.0.0.1:8080/protocast";
const conn = connect(url, { token: "dev-alice" });
conn.on("error", (err) => console.error(\`connection error: \${err.message}\`));

const todo = createClient(TodoService, conn);
const list = todo.listEvents({ listId: "groceries" });
await list.ready;

const reminders = todo.reminders()[Symbol.asyncIterator]();
const { itemId } = await todo.addItem({ listId: "groceries", text: "milk" });
console.log(\`added \${itemId}\`);

for await (const ev of list) {
  console.log(\`list event: \${ev.author} added "\${ev.text}" (\${ev.itemId})\`);
  break;
}
const reminder = await reminders.next();
if (!reminder.done) console.log(\`reminder: \${reminder.value.text}\`);
conn.close();
`;
}

export const sampleTsconfig = `{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "lib": ["ES2023", "DOM"],
    "types": ["node"],
    "strict": true,
    "skipLibCheck": true,
    "outDir": "dist",
    "rootDir": "src"
  },
  "include": ["src"]
}
`;
