import type { DescMessage } from "@bufbuild/protobuf";
import type { GeneratedFile, ImportSymbol, Printable } from "@bufbuild/protoplugin";
import { docText } from "./doc-text.js";
import { paramsName, publishName, serviceNames, type ServiceNames } from "./generated-names.js";
import { printRules } from "./print-rules.js";
import type { ResolvedCall, ResolvedChannel, ResolvedEvent, ResolvedService } from "./resolved-rules.js";

/** The package name generated code imports the runtime from; package.json "exports" maps it. */
export const RUNTIME_PACKAGE = "protocast";

/**
 * Prints everything Protocast generates for one service: the rules, a parameter interface
 * per channel, the handler and client interfaces, the channel and event maps, and the
 * ServiceDefinition constant that joins them with the binary codecs `codecs` (see
 * print-codec.ts).
 */
export function printService(f: GeneratedFile, resolved: ResolvedService, codecs: Printable[]): void {
  const names = serviceNames(resolved.service);
  const sym = symbols(f);
  const channels = resolved.methods.filter((m): m is ResolvedChannel => m.kind === "channel");
  const events = resolved.methods.filter((m): m is ResolvedEvent => m.kind === "event");

  printRules(f, resolved, names);
  for (const channel of channels) printParams(f, channel);
  printHandlers(f, resolved, names, sym);
  printRecovered(f, resolved, sym);
  printClient(f, resolved, names, sym);

  f.print(f.jsDoc(`Channels of ${resolved.service.name}, for publishing from the server.`));
  f.print(f.export("interface", names.channels), " {");
  for (const { method } of channels) {
    f.print("  readonly ", method.localName, ": ", sym.ChannelDef, "<", paramsName(method), ", typeof ", schema(f, method.output), ", ", names.rules, "[", f.string(method.localName), "]>;");
  }
  f.print("}");
  f.print();
  f.print(f.jsDoc(`Direct events of ${resolved.service.name}, for pushing from the server.`));
  f.print(f.export("interface", names.events), " {");
  for (const { method } of events) {
    f.print("  readonly ", method.localName, ": ", sym.EventDef, "<typeof ", schema(f, method.output), ", ", names.rules, "[", f.string(method.localName), "]>;");
  }
  f.print("}");
  f.print();
  f.print(f.jsDoc(docText(resolved.service, `Definition of ${resolved.service.name}: implement it on a server, or create a client of it.`)));
  f.print(
    f.export("const", names.definition),
    ": ", sym.ServiceDefinition, "<", names.handlers, ", ", names.client, ", ", names.channels, ", ", names.events, "> = ",
    sym.defineService, "(", f.importSchema(resolved.service), ", ", names.rules, ", ", ...codecs, ");",
  );
}

function printParams(f: GeneratedFile, { method, rules, variables }: ResolvedChannel): void {
  f.print(f.jsDoc(`Parameters of channel ${JSON.stringify(rules.pattern)}.`));
  f.print(f.export("interface", paramsName(method)), " {");
  for (const field of variables) {
    const doc = docText(field);
    if (doc !== "") f.print(f.jsDoc(doc, "  "));
    f.print("  ", field.localName, ": string;");
  }
  f.print("}");
  f.print();
}

function printHandlers(f: GeneratedFile, { service, methods }: ResolvedService, names: ServiceNames, sym: Symbols): void {
  f.print(f.jsDoc(docText(service, `Server side of ${service.name}.`)));
  f.print(f.export("interface", names.handlers), " {");
  for (const m of methods) {
    const { method } = m;
    if (m.kind === "call") {
      const out = init(f, sym, method.output);
      f.print(f.jsDoc(docText(method, callSummary(m)), "  "));
      f.print("  ", method.localName, "(request: ", f.importShape(method.input), ", context: ", sym.CallContext, "): ", out, " | Promise<", out, ">;");
    } else if (m.kind === "channel" && m.rules.clientPublish) {
      const out = init(f, sym, method.output);
      f.print(
        f.jsDoc(
          `Optional hook run when a client publishes to ${JSON.stringify(m.rules.pattern)}: return the message to\n` +
            `broadcast, return nothing to broadcast it as sent, or throw a ProtocastError to refuse it.`,
          "  ",
        ),
      );
      f.print(
        "  ", publishName(method), "?(params: ", paramsName(method), ", message: ", f.importShape(method.output), ", context: ", sym.PublishContext, "): ",
        out, " | void | Promise<", out, " | void>;",
      );
    }
  }
  f.print("}");
  f.print();
}

function printClient(f: GeneratedFile, { service, methods }: ResolvedService, names: ServiceNames, sym: Symbols): void {
  f.print(f.jsDoc(docText(service, `Client of ${service.name}.`)));
  f.print(f.export("interface", names.client), " {");
  for (const m of methods) {
    const { method } = m;
    switch (m.kind) {
      case "call":
        f.print(f.jsDoc(docText(method, callSummary(m)), "  "));
        f.print("  ", method.localName, "(request: ", init(f, sym, method.input), ", options?: ", sym.CallOptions, "): Promise<", f.importShape(method.output), ">;");
        break;
      case "channel": {
        const summary = `Channel ${JSON.stringify(m.rules.pattern)}, ${m.rules.delivery}.`;
        f.print(f.jsDoc(docText(method, summary), "  "));
        f.print("  ", method.localName, "(params: ", paramsName(method), ", options?: ", sym.SubscribeOptions, "): ", sym.Subscription, "<", f.importShape(method.output), ">;");
        if (m.rules.clientPublish) {
          f.print(f.jsDoc(`Publishes to channel ${JSON.stringify(m.rules.pattern)}.`, "  "));
          f.print(
            "  ", publishName(method), "(params: ", paramsName(method), ", message: ", init(f, sym, method.output), ", options?: ", sym.PublishOptions, "): Promise<void>;",
          );
        }
        break;
      }
      case "event":
        f.print(f.jsDoc(docText(method, `Direct event, ${m.rules.delivery}.`), "  "));
        f.print("  ", method.localName, "(): ", sym.EventStream, "<", f.importShape(method.output), ">;");
        break;
    }
  }
  if (outboxCalls(methods).length > 0) {
    f.print(
      f.jsDoc(
        `Calls of ${service.name} that an earlier client left unanswered in the outbox (ConnectOptions.outbox),\n` +
          `with their outcomes, each once. Ends when every one has been handed over, or the connection closes.`,
        "  ",
      ),
    );
    f.print("  $recovered(): AsyncIterableIterator<", recoveredName(service.name), ">;");
  }
  f.print("}");
  f.print();
}

/** The calls a client keeps in its outbox: exactly-once, or idempotent at-least-once (runtime/client/outbox-api.ts keptByOutbox). */
function outboxCalls(methods: ResolvedService["methods"]): ResolvedCall[] {
  return methods.filter((m): m is ResolvedCall => m.kind === "call" && m.rules.idempotent && m.rules.delivery !== "at-most-once");
}

function recoveredName(serviceName: string): string {
  return `${serviceName}Recovered`;
}

/** A union over the outbox calls of the service, discriminated by method name, for $recovered(). */
function printRecovered(f: GeneratedFile, { service, methods }: ResolvedService, sym: Symbols): void {
  const calls = outboxCalls(methods);
  if (calls.length === 0) return;
  f.print(f.jsDoc(`A call of ${service.name} recovered from the outbox after a reload or a restart; \`method\` tells which.`));
  f.print(f.export("type", recoveredName(service.name)), " =");
  calls.forEach(({ method }, i) => {
    const end = i === calls.length - 1 ? ";" : "";
    f.print("  | ", sym.RecoveredCall, "<", f.string(method.localName), ", ", f.importShape(method.input), ", ", f.importShape(method.output), ">", end);
  });
  f.print();
}

function callSummary({ rules }: ResolvedCall): string {
  const scope = rules.scope === "" ? "" : `; needs scope ${JSON.stringify(rules.scope)}`;
  return `Call, ${rules.delivery}${rules.idempotent ? ", idempotent" : ""}; times out after ${rules.timeoutMs} ms${scope}.`;
}

function init(f: GeneratedFile, sym: Symbols, message: DescMessage): Printable {
  return [sym.MessageInitShape, "<typeof ", schema(f, message), ">"];
}

function schema(f: GeneratedFile, message: DescMessage): ImportSymbol {
  return f.importSchema(message, true);
}

type Symbols = ReturnType<typeof symbols>;

function symbols(f: GeneratedFile) {
  const type = (name: string) => f.import(name, RUNTIME_PACKAGE, true);
  return {
    defineService: f.import("defineService", RUNTIME_PACKAGE),
    MessageInitShape: f.import("MessageInitShape", "@bufbuild/protobuf", true),
    CallContext: type("CallContext"),
    CallOptions: type("CallOptions"),
    ChannelDef: type("ChannelDef"),
    EventDef: type("EventDef"),
    EventStream: type("EventStream"),
    PublishContext: type("PublishContext"),
    PublishOptions: type("PublishOptions"),
    RecoveredCall: type("RecoveredCall"),
    ServiceDefinition: type("ServiceDefinition"),
    SubscribeOptions: type("SubscribeOptions"),
    Subscription: type("Subscription"),
  };
}
