import { availableParallelism } from "node:os";
import { beforeAll, describe, expect, it } from "vitest";
import { bufGenerate, type BufResult } from "./buf-generate.js";

// Each fixture under fixtures/bad is a small module with one file per case group; every
// method of it breaks one rule. One buf run per fixture, a few at a time: each run starts
// buf and the plugin (about 2 s of CPU), and grouping keeps the file well under a minute.
const FIXTURES = [
  "pattern_fields",
  "malformed_pattern",
  "delivery_conflicts",
  "conflation",
  "method_kinds",
  "event_fields",
  "publish_scope",
  "name_collision",
  "collect_all",
] as const;
type Fixture = (typeof FIXTURES)[number];

const results = new Map<Fixture, BufResult>();

beforeAll(async () => {
  const queue = [...FIXTURES];
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) results.set(next, await bufGenerate(`bad/${next}`));
  };
  await Promise.all(Array.from({ length: Math.min(3, Math.max(2, availableParallelism())) }, worker));
  // About 15 s on an idle machine; ten buf and plugin processes can take minutes on a loaded one.
}, 300_000);

/** The problem lines that name `element`, after checking the run failed and wrote nothing. */
function problems(fixture: Fixture, file: string, element: string): string[] {
  const result = results.get(fixture);
  if (result === undefined) throw new Error(`no result for ${fixture}`);
  expect(result.code, result.stderr).not.toBe(0);
  expect(result.files.size).toBe(0);
  const lines = result.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${file}:`) && l.includes(` ${element}: `));
  expect(lines, `no problem for ${element} in:\n${result.stderr}`).not.toHaveLength(0);
  for (const line of lines) {
    // file:line:column: element: message Fix: change
    expect(line).toMatch(new RegExp(`^${escape(file)}:\\d+:\\d+: ${escape(element)}: .+\\. Fix: .+\\.$`));
  }
  return lines;
}

/** Asserts one problem of `element` whose message and fix contain the given texts. */
function expectProblem(fixture: Fixture, element: string, message: string, fix: string, file = `bad/v1/${fixture}.proto`): void {
  const lines = problems(fixture, file, element);
  const match = lines.find((l) => {
    const [what, how] = l.split(" Fix: ");
    return what !== undefined && how !== undefined && what.includes(message) && how.includes(fix);
  });
  expect(match, `expected "${message}" / "${fix}" among:\n${lines.join("\n")}`).toBeDefined();
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("channel pattern against its request message", () => {
  const svc = "bad.v1.PatternFieldsService";
  it("rejects a variable that is not a request field", () => {
    expectProblem("pattern_fields", `${svc}.UnknownVariable`, "names {user}, which is not a field of bad.v1.UnknownVariableRequest", "add `string user`");
  });
  it("rejects a request field missing from the pattern", () => {
    expectProblem("pattern_fields", `${svc}.FieldNotInPattern`, "field bad.v1.FieldNotInPatternRequest.secret is not in pattern", "add {secret} to the pattern");
  });
  it("rejects a variable whose field is not a string", () => {
    expectProblem("pattern_fields", `${svc}.NotString`, "{shard} is field bad.v1.NotStringRequest.shard, which is not a plain string", "as `string shard`");
  });
  it("rejects a variable whose field is repeated", () => {
    expectProblem("pattern_fields", `${svc}.RepeatedVariable`, "which is not a plain string", "as `string tags`");
  });
});

describe("malformed channel patterns", () => {
  const svc = "bad.v1.MalformedPatternService";
  it("rejects an empty segment", () => {
    expectProblem("malformed_pattern", `${svc}.EmptySegment`, "has an empty segment", `remove the repeated "/"`);
  });
  it("rejects unbalanced braces", () => {
    expectProblem("malformed_pattern", `${svc}.UnbalancedBraces`, "unbalanced or misplaced braces", "whole segment in single braces");
  });
  it("rejects a variable that fills part of a segment", () => {
    expectProblem("malformed_pattern", `${svc}.PartialSegment`, `braces in segment "room-{room_id}"`, "whole segment");
  });
  it("rejects a duplicate variable", () => {
    expectProblem("malformed_pattern", `${svc}.DuplicateVariable`, "uses {room_id} twice", "keep one {room_id}");
  });
  it("rejects a leading slash", () => {
    expectProblem("malformed_pattern", `${svc}.LeadingSlash`, `"/room/{room_id}" starts or ends with "/"`, `remove the leading and trailing "/"`);
  });
  it("rejects a trailing slash", () => {
    expectProblem("malformed_pattern", `${svc}.TrailingSlash`, `"room/{room_id}/" starts or ends with "/"`, `remove the leading and trailing "/"`);
  });
  it("rejects a channel without a pattern", () => {
    expectProblem("malformed_pattern", `${svc}.MissingPattern`, "has no pattern", "set pattern");
  });
  it("rejects a variable that is not a lower_snake_case name", () => {
    expectProblem("malformed_pattern", `${svc}.CamelCaseVariable`, "{roomId}, which is not a lower_snake_case field name", "start with a lower-case letter");
  });
  it("rejects odd characters in a literal segment", () => {
    expectProblem("malformed_pattern", `${svc}.OddLiteral`, `literal segment "room*"`, "letters, digits");
  });
});

describe("conflicting delivery settings", () => {
  const svc = "bad.v1.DeliveryConflictsService";
  it("rejects an exactly-once call that is not idempotent", () => {
    expectProblem("delivery_conflicts", `${svc}.ExactlyOnceNotIdempotent`, "exactly-once but idempotent: false", "remove idempotent: false");
  });
  it("rejects an at-least-once call that is not idempotent", () => {
    expectProblem("delivery_conflicts", `${svc}.AtLeastOnceNotIdempotent`, "at-least-once but idempotent: false", "DELIVERY_AT_MOST_ONCE");
  });
  it("rejects an at-least-once call that does not declare idempotent: true (PROTOCOL.md 7.2)", () => {
    expectProblem("delivery_conflicts", `${svc}.AtLeastOnceUndeclared`, "at-least-once but no idempotent: true", "add idempotent: true");
  });
  it("rejects an at-least-once channel that drops the newest frames", () => {
    expectProblem("delivery_conflicts", `${svc}.AtLeastOnceDropNewest`, "at-least-once but its overflow policy drop-newest drops frames", "OVERFLOW_DISCONNECT");
  });
  it("rejects an exactly-once channel that conflates", () => {
    expectProblem("delivery_conflicts", `${svc}.ExactlyOnceConflate`, "exactly-once but its overflow policy conflate", "DELIVERY_AT_MOST_ONCE");
  });
  it("rejects a channel that is at-least-once by default and drops the oldest frames", () => {
    expectProblem("delivery_conflicts", `${svc}.DefaultDropOldest`, "at-least-once but its overflow policy drop-oldest", "OVERFLOW_DISCONNECT");
  });
});

describe("conflation keys", () => {
  it("rejects OVERFLOW_CONFLATE on a message without a conflation key", () => {
    expectProblem("conflation", "bad.v1.ConflationService.ConflateWithoutKey", "needs a conflation key, but bad.v1.Unkeyed declares none", "to message bad.v1.Unkeyed");
  });
  it("rejects a conflation key that names no field", () => {
    expectProblem("conflation", "bad.v1.MissingKey", `conflation_key "nope" is not a field of bad.v1.MissingKey`, "(user)");
  });
  it("rejects a conflation key that names a repeated field", () => {
    expectProblem("conflation", "bad.v1.ListKey", `conflation_key "users" names a list field`, "it has none");
  });
  it("checks a conflation key on a message no channel uses", () => {
    expectProblem("conflation", "bad.v1.UnusedKey", `conflation_key "inner" names a message field`, "scalar fields");
  });
});

describe("options on the wrong kind of method", () => {
  const svc = "bad.v1.MethodKindsService";
  it("rejects a channel option on a unary method", () => {
    expectProblem("method_kinds", `${svc}.ChannelOnUnary`, "(protocast.v1.channel) is set on a unary method", "returns (stream Empty)");
  });
  it("rejects an event option on a unary method", () => {
    expectProblem("method_kinds", `${svc}.EventOnUnary`, "(protocast.v1.event) is set on a unary method", "returns (stream Empty)");
  });
  it("rejects a call option on a streaming method", () => {
    expectProblem("method_kinds", `${svc}.CallOnStream`, "(protocast.v1.call) is set on a server-streaming method", "(protocast.v1.channel) or (protocast.v1.event)");
  });
  it("rejects two of call, channel and event on one method", () => {
    expectProblem("method_kinds", `${svc}.TwoOptions`, "(protocast.v1.channel) and (protocast.v1.event)", "keep only one");
  });
  it("rejects a server-streaming method without a channel or event option", () => {
    expectProblem("method_kinds", `${svc}.NoOption`, "neither a channel nor an event", "option (protocast.v1.channel)");
  });
  it("rejects client streaming", () => {
    expectProblem("method_kinds", `${svc}.ClientStream`, "client streaming methods are not supported", "client_publish: true");
  });
  it("rejects bidirectional streaming", () => {
    expectProblem("method_kinds", `${svc}.BidiStream`, "bidirectional streaming methods are not supported", "unary call");
  });
});

describe("other rules", () => {
  it("rejects an event whose request has fields", () => {
    expectProblem("event_fields", "bad.v1.EventFieldsService.EventWithFields", "event request bad.v1.EventWithFieldsRequest has fields (user_id)", "remove the fields");
  });
  it("rejects publish_scope without client_publish", () => {
    expectProblem("publish_scope", "bad.v1.PublishScopeService.ReadOnly", `publish_scope "feed.write" is set but clients may not publish`, "client_publish: true");
  });
});

describe("generated name collisions", () => {
  it("rejects a call named like the publish method of a channel", () => {
    const element = "bad.v1.NameCollisionService.PublishTyping";
    expectProblem("name_collision", element, `"publishTyping" in NameCollisionServiceClient is taken twice: by the publish method of channel Typing and by call PublishTyping`, "rename");
    expectProblem("name_collision", element, `"publishTyping" in NameCollisionServiceHandlers is taken twice`, "rename rpc NameCollisionService.PublishTyping or rpc NameCollisionService.Typing");
  });
  it("rejects channels of two services with the same parameter interface", () => {
    expectProblem("name_collision", "bad.v1.SecondService.Typing", `"TypingParams" in the file is taken twice: by the parameters of channel NameCollisionService.Typing and by the parameters of channel SecondService.Typing`, "rename rpc SecondService.Typing or rpc NameCollisionService.Typing");
  });
  it("rejects a client method named then", () => {
    expectProblem("name_collision", "bad.v1.NameCollisionService.Then", `would be named "then"`, "rename rpc Then");
  });
  it("rejects a message that would hide a global type of the signatures", () => {
    expectProblem("name_collision", "bad.v1.NameCollisionService.Wait", "message bad.v1.Promise would hide the global Promise type", "rename message bad.v1.Promise");
  });
});

describe("reporting", () => {
  it("reports the problems of every file of a run together", () => {
    expectProblem("collect_all", "bad.v1.FirstService.Stream", "neither a channel nor an event", "option (protocast.v1.event)", "bad/v1/first.proto");
    expectProblem("collect_all", "bad.v1.SecondService.Call", "exactly-once but idempotent: false", "idempotent", "bad/v1/second.proto");
    expect(results.get("collect_all")?.stderr).toContain("2 problems with Protocast options:");
  });
});

describe("a service that does not import the options", () => {
  it("gets every default, and files without services produce nothing", async () => {
    const result = await bufGenerate("good/plain", { withOptions: false });
    expect(result.code, result.stderr).toBe(0);
    expect([...result.files.keys()]).toEqual(["plain/v1/plain_protocast.ts"]);
    expect(result.files.get("plain/v1/plain_protocast.ts")).toContain(
      `ping: { kind: "call", delivery: "at-most-once", idempotent: false, timeoutMs: 10000, scope: "" },`,
    );
  });
});
