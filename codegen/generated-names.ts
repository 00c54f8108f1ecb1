import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { safeIdentifier } from "@bufbuild/protoplugin";
import { problemAt, type Problem } from "./problem.js";
import type { ResolvedService } from "./resolved-rules.js";

/** Top-level names the generator declares for a service. */
export interface ServiceNames {
  /** The exported ServiceDefinition constant. */
  readonly definition: string;
  /** The exported rules type; the private rules constant shares the name. */
  readonly rules: string;
  readonly handlers: string;
  readonly client: string;
  readonly channels: string;
  readonly events: string;
}

/** The names printed for `service`, derived from its proto name. */
export function serviceNames(service: DescService): ServiceNames {
  return {
    definition: safeIdentifier(service.name),
    rules: `${service.name}Rules`,
    handlers: `${service.name}Handlers`,
    client: `${service.name}Client`,
    channels: `${service.name}Channels`,
    events: `${service.name}Events`,
  };
}

/** Name of the interface that types the parameters of a channel, such as "RoomEventsParams". */
export function paramsName(method: DescMethod): string {
  return `${upperFirst(method.name)}Params`;
}

/** Name of the client method and server hook that publish to a channel, such as "publishTyping". */
export function publishName(method: DescMethod): string {
  return `publish${upperFirst(method.localName)}`;
}

// A client with a "then" member is a thenable: returning it from an async function or
// awaiting it would call that method instead of yielding the client.
const RESERVED_CLIENT_MEMBERS: ReadonlySet<string> = new Set(["then"]);

// Global types the printed signatures use. A message type imported under the same name would
// shadow them; protoplugin only renames imports that clash with names the file declares.
const GLOBAL_TYPES: ReadonlySet<string> = new Set(["Promise"]);

/**
 * Checks that the names printed for the services of one file do not clash: top-level
 * declarations across services, and members of each handler and client interface.
 * Adds a problem per clash.
 */
export function checkGeneratedNames(services: readonly ResolvedService[], problems: Problem[]): void {
  const topLevel = new Names("the file", problems);
  for (const { service, methods } of services) {
    const names = serviceNames(service);
    for (const name of new Set(Object.values(names))) topLevel.claim(name, service, `service ${service.name}`);
    const handlers = new Names(names.handlers, problems);
    const client = new Names(names.client, problems);
    for (const m of methods) {
      const what = `${m.kind} ${m.method.name}`;
      if (RESERVED_CLIENT_MEMBERS.has(m.method.localName)) {
        problems.push(
          problemAt(
            m.method,
            `the client method would be named "${m.method.localName}", which makes every client a thenable that await calls by mistake.`,
            `rename rpc ${m.method.name}.`,
          ),
        );
      }
      for (const message of new Set([m.method.input, m.method.output])) {
        if (message.parent === undefined && GLOBAL_TYPES.has(message.name)) {
          problems.push(
            problemAt(
              m.method,
              `message ${message.typeName} would hide the global ${message.name} type that the generated signatures use.`,
              `rename message ${message.typeName}.`,
            ),
          );
        }
      }
      client.claim(m.method.localName, m.method, what);
      if (m.kind === "call") handlers.claim(m.method.localName, m.method, what);
      if (m.kind === "channel") {
        topLevel.claim(paramsName(m.method), m.method, `the parameters of ${m.kind} ${service.name}.${m.method.name}`);
        if (m.rules.clientPublish) {
          handlers.claim(publishName(m.method), m.method, `the publish hook of ${what}`);
          client.claim(publishName(m.method), m.method, `the publish method of ${what}`);
        }
      }
    }
  }
}

type NameOwner = DescService | DescMethod;

/** Generated names of one scope, each with the element it was generated for. */
class Names {
  private readonly owners = new Map<string, { readonly site: NameOwner; readonly what: string }>();

  constructor(
    private readonly scope: string,
    private readonly problems: Problem[],
  ) {}

  claim(name: string, site: NameOwner, what: string): void {
    const first = this.owners.get(name);
    if (first === undefined) {
      this.owners.set(name, { site, what });
      return;
    }
    this.problems.push(
      problemAt(
        site,
        `generated name "${name}" in ${this.scope} is taken twice: by ${first.what} and by ${what}.`,
        `rename ${label(site)} or ${label(first.site)} so that the generated names differ.`,
      ),
    );
  }
}

function label(site: NameOwner): string {
  return site.kind === "service" ? `service ${site.name}` : `rpc ${site.parent.name}.${site.name}`;
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
