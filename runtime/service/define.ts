import type { DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import type { MessageCodec } from "../codec/message-codec.js";
import { reflectionCodec } from "../codec/reflection-codec.js";
import { ProtocastError } from "../errors/protocast-error.js";
import { Code } from "../errors/code.js";
import type { CallRules, ChannelRules, EventRules, MethodRules } from "./rules.js";
import { compilePattern, type ChannelPattern } from "./pattern.js";

/** A unary method of a service, with its resolved rules. */
export interface CallDef<I extends DescMessage = DescMessage, O extends DescMessage = DescMessage, R extends CallRules = CallRules> {
  readonly kind: "call";
  /** "package.Service/Method", the name used on the wire. */
  readonly path: string;
  readonly localName: string;
  readonly input: I;
  readonly output: O;
  /** Encodes requests (client) and decodes them (server). */
  readonly inputCodec: MessageCodec<I>;
  /** Encodes replies (server) and decodes them (client). */
  readonly outputCodec: MessageCodec<O>;
  readonly rules: R;
}

/** A channel: a named stream of messages with typed name parameters. */
export interface ChannelDef<P extends object = Record<string, string>, M extends DescMessage = DescMessage, R extends ChannelRules = ChannelRules> {
  readonly kind: "channel";
  readonly path: string;
  readonly localName: string;
  readonly message: M;
  readonly messageCodec: MessageCodec<M>;
  readonly rules: R;
  /** Builds the concrete channel name, such as "room/lobby". Throws INVALID_ARGUMENT on a bad value. */
  topic(params: P): string;
  /** Reads the parameters back from a channel name; undefined when the name does not match. */
  parse(channel: string): P | undefined;
}

/** A direct event: the server pushes it to one session or user. */
export interface EventDef<M extends DescMessage = DescMessage, R extends EventRules = EventRules> {
  readonly kind: "event";
  readonly path: string;
  readonly localName: string;
  readonly message: M;
  readonly messageCodec: MessageCodec<M>;
  readonly rules: R;
}

export type AnyMethodDef = CallDef | ChannelDef | EventDef;

/**
 * A service as the runtime sees it. H and C are the generated handler and client interfaces;
 * CH and EV map local names to typed channel and event definitions.
 */
export interface ServiceDefinition<H = unknown, C = unknown, CH = Record<string, ChannelDef>, EV = Record<string, EventDef>> {
  readonly typeName: string;
  readonly desc: DescService;
  readonly calls: Readonly<Record<string, CallDef>>;
  readonly channels: CH;
  readonly events: EV;
  /** Every method by its wire path. */
  readonly byPath: ReadonlyMap<string, AnyMethodDef>;
  /** Type-only markers; never set at run time. */
  readonly $handlers?: H;
  readonly $client?: C;
}

/**
 * Joins a protobuf-es service descriptor with the rules the generator resolved for each
 * method, and with the binary codecs it printed, by message type name. A message without a
 * codec there (or every message, when `codecs` is absent, as in a hand-written definition)
 * gets a reflection codec. Called by generated code; applications use the generated constant.
 */
export function defineService<H, C, CH, EV>(
  desc: DescService,
  rules: Readonly<Record<string, MethodRules>>,
  codecs: Readonly<Record<string, MessageCodec>> = {},
): ServiceDefinition<H, C, CH, EV> {
  const codecOf = (message: DescMessage): MessageCodec => codecs[message.typeName] ?? reflectionCodec(message);
  const calls: Record<string, CallDef> = {};
  const channels: Record<string, ChannelDef> = {};
  const events: Record<string, EventDef> = {};
  const byPath = new Map<string, AnyMethodDef>();
  for (const method of desc.methods) {
    const rule = rules[method.localName];
    if (rule === undefined) {
      throw new ProtocastError(Code.Internal, `no rules for ${desc.typeName}.${method.name}; run npm run gen again`);
    }
    const path = `${desc.typeName}/${method.name}`;
    let def: AnyMethodDef;
    switch (rule.kind) {
      case "call":
        def = {
          kind: "call",
          path,
          localName: method.localName,
          input: method.input,
          output: method.output,
          inputCodec: codecOf(method.input),
          outputCodec: codecOf(method.output),
          rules: rule,
        };
        calls[method.localName] = def;
        break;
      case "channel":
        def = channelDef(method, path, rule, compilePattern(rule.pattern, rule.params), codecOf(method.output));
        channels[method.localName] = def;
        break;
      case "event":
        def = { kind: "event", path, localName: method.localName, message: method.output, messageCodec: codecOf(method.output), rules: rule };
        events[method.localName] = def;
        break;
    }
    byPath.set(path, def);
  }
  return { typeName: desc.typeName, desc, calls, channels: channels as CH, events: events as EV, byPath };
}

function channelDef(method: DescMethod, path: string, rules: ChannelRules, pattern: ChannelPattern, messageCodec: MessageCodec): ChannelDef {
  return {
    kind: "channel",
    path,
    localName: method.localName,
    message: method.output,
    messageCodec,
    rules,
    topic: (params) => pattern.format(params),
    parse: (channel) => pattern.parse(channel),
  };
}
