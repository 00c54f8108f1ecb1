import type { CallRules, ChannelRules, EventRules } from "protocast";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { CallRulesValue, ChannelRulesValue, EventRulesValue } from "../../codegen/resolved-rules.js";
import { ChatService, type ChatServiceRules } from "../../generated/acme/chat/v1/chat_protocast.js";
import { ShowcaseAdminService, ShowcaseService, type DocEditsParams } from "../../generated/acme/showcase/v1/showcase_protocast.js";

// The generator keeps its own copy of the rule shapes because it may not import the runtime;
// this pins the two together at compile time (npm run typecheck).
expectTypeOf<CallRulesValue>().toEqualTypeOf<CallRules>();
expectTypeOf<ChannelRulesValue>().toEqualTypeOf<ChannelRules>();
expectTypeOf<EventRulesValue>().toEqualTypeOf<EventRules>();

// Rules are literal types, so code can branch on them at compile time.
expectTypeOf<ChatServiceRules["typing"]["overflow"]>().toEqualTypeOf<"conflate">();
expectTypeOf(ChatService.channels.roomEvents.rules.delivery).toEqualTypeOf<"at-least-once">();
expectTypeOf(ShowcaseService.channels.docEdits.rules.params).toEqualTypeOf<{ readonly orgId: "org_id"; readonly docId: "doc_id" }>();
expectTypeOf(ShowcaseService.channels.docEdits.topic).parameter(0).toEqualTypeOf<DocEditsParams>();
expectTypeOf(ShowcaseService.events.receipts.rules.delivery).toEqualTypeOf<"exactly-once">();

const channelDefaults = {
  kind: "channel",
  maxMembers: 0,
  clientPublish: false,
  presence: false,
  historySize: 0,
  historyTtlMs: 0,
  conflationKey: "",
} as const;

describe("ChatService rules", () => {
  it("resolve calls from the service defaults", () => {
    expect(ChatService.calls["sendMessage"]?.rules).toEqual({ kind: "call", delivery: "exactly-once", idempotent: true, timeoutMs: 5000, scope: "chat" });
    // idempotent implied false by at-most-once; the method's timeout beats the service's
    expect(ChatService.calls["listRooms"]?.rules).toEqual({ kind: "call", delivery: "at-most-once", idempotent: false, timeoutMs: 2000, scope: "chat" });
  });

  it("resolve channels and events", () => {
    expect(ChatService.channels.roomEvents.rules).toEqual({
      ...channelDefaults,
      pattern: "room/{room_id}",
      params: { roomId: "room_id" },
      delivery: "at-least-once",
      overflow: "disconnect",
      maxMembers: 1000,
      readScope: "chat",
      publishScope: "chat",
      presence: true,
      historySize: 500,
    });
    expect(ChatService.channels.typing.rules).toEqual({
      ...channelDefaults,
      pattern: "typing/{room_id}",
      params: { roomId: "room_id" },
      delivery: "at-most-once",
      overflow: "conflate",
      readScope: "chat",
      publishScope: "chat",
      clientPublish: true,
      conflationKey: "user",
    });
    expect(ChatService.events.notices.rules).toEqual({ kind: "event", delivery: "at-least-once", scope: "chat" });
    expect(ChatService.byPath.get("acme.chat.v1.ChatService/SendMessage")?.kind).toBe("call");
  });
});

describe("ShowcaseService rules: every default path", () => {
  const call = (name: string) => ShowcaseService.calls[name]?.rules;
  const base = { kind: "call", timeoutMs: 7000, scope: "showcase" } as const;

  it("call with no option: at-most-once, not idempotent, service timeout and scope", () => {
    expect(call("getItem")).toEqual({ ...base, delivery: "at-most-once", idempotent: false });
  });
  it("exactly-once implies idempotent; method timeout beats the service's", () => {
    expect(call("putItem")).toEqual({ ...base, delivery: "exactly-once", idempotent: true, timeoutMs: 3000 });
  });
  it("at-least-once, declared idempotent", () => {
    expect(call("touchItem")).toEqual({ ...base, delivery: "at-least-once", idempotent: true });
  });
  it("idempotent: true implies exactly-once", () => {
    expect(call("renameItem")).toEqual({ ...base, delivery: "exactly-once", idempotent: true });
  });
  it("idempotent: false implies at-most-once; method scope beats the service's", () => {
    expect(call("deleteItem")).toEqual({ ...base, delivery: "at-most-once", idempotent: false, scope: "showcase.admin" });
  });
  it("explicit at-most-once keeps an explicit idempotent: true", () => {
    expect(call("peekItem")).toEqual({ ...base, delivery: "at-most-once", idempotent: true });
  });

  it("channel with every option set", () => {
    expect(ShowcaseService.channels.docEdits.rules).toEqual({
      ...channelDefaults,
      pattern: "org/{org_id}/doc/{doc_id}",
      params: { orgId: "org_id", docId: "doc_id" },
      delivery: "exactly-once",
      overflow: "disconnect",
      maxMembers: 50,
      readScope: "docs.read",
      publishScope: "docs.write",
      clientPublish: true,
      presence: true,
      historySize: 1000,
      historyTtlMs: 60000,
    });
  });
  it("channel with every default: at-least-once, disconnect, service scope for read and publish", () => {
    expect(ShowcaseService.channels.announcements.rules).toEqual({
      ...channelDefaults,
      pattern: "announcements",
      params: {},
      delivery: "at-least-once",
      overflow: "disconnect",
      readScope: "showcase",
      publishScope: "showcase",
    });
  });
  it("at-most-once channel drops the oldest by default; publish scope defaults to read scope", () => {
    expect(ShowcaseService.channels.cursors.rules).toMatchObject({
      delivery: "at-most-once",
      overflow: "drop-oldest",
      readScope: "docs.read",
      publishScope: "docs.read",
      clientPublish: true,
      conflationKey: "userId",
    });
  });
  it("explicit overflow policies", () => {
    expect(ShowcaseService.channels.ticker.rules).toMatchObject({ delivery: "at-most-once", overflow: "drop-newest", params: { symbol: "symbol" } });
    expect(ShowcaseService.channels.gauges.rules).toMatchObject({ delivery: "at-most-once", overflow: "drop-oldest", params: { machineId: "machine_id" } });
    expect(ShowcaseService.channels.positions.rules).toMatchObject({ delivery: "at-most-once", overflow: "conflate", conflationKey: "vehicleId" });
  });
  it("events: own scope, service scope, explicit delivery", () => {
    expect(ShowcaseService.events.alerts.rules).toEqual({ kind: "event", delivery: "at-least-once", scope: "showcase.alerts" });
    expect(ShowcaseService.events.receipts.rules).toEqual({ kind: "event", delivery: "exactly-once", scope: "showcase" });
    expect(ShowcaseService.events.nudges.rules).toEqual({ kind: "event", delivery: "at-most-once", scope: "showcase" });
  });
  it("a service without options takes the built-in defaults", () => {
    expect(ShowcaseAdminService.calls["reindex"]?.rules).toEqual({ kind: "call", delivery: "at-most-once", idempotent: false, timeoutMs: 10000, scope: "" });
    expect(ShowcaseAdminService.channels.jobs.rules).toMatchObject({ readScope: "", publishScope: "", delivery: "at-least-once", overflow: "disconnect" });
    expect(ShowcaseAdminService.events.legacyJobs.rules).toEqual({ kind: "event", delivery: "at-least-once", scope: "" });
  });
});

describe("channel topics", () => {
  it("round-trip a pattern with several variables", () => {
    const docEdits = ShowcaseService.channels.docEdits;
    const topic = docEdits.topic({ orgId: "acme", docId: "d-42" });
    expect(topic).toBe("org/acme/doc/d-42");
    expect(docEdits.parse(topic)).toEqual({ orgId: "acme", docId: "d-42" });
    expect(docEdits.parse("org/acme/doc")).toBeUndefined();
    expect(docEdits.parse("team/acme/doc/d-42")).toBeUndefined();
  });
  it("round-trip a literal pattern with no parameters", () => {
    const announcements = ShowcaseService.channels.announcements;
    expect(announcements.topic({})).toBe("announcements");
    expect(announcements.parse("announcements")).toEqual({});
    expect(announcements.parse("announcement")).toBeUndefined();
  });
});
