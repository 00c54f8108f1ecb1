import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { resolveConflationKey } from "../../codegen/conflation-key.js";
import { findOptionExtensions } from "../../codegen/option-extensions.js";
import type { Problem } from "../../codegen/problem.js";
import { resolveCall, type DeclaredCall } from "../../codegen/resolve-call.js";
import { resolveChannel } from "../../codegen/resolve-channel.js";
import { resolveEvent } from "../../codegen/resolve-event.js";
import { resolveSchema } from "../../codegen/resolve-schema.js";
import { DELIVERY_NAMES, OVERFLOW_NAMES } from "../../codegen/resolved-rules.js";
import { ChatService as ChatServiceDesc, file_acme_chat_v1_chat, TypingResponseSchema } from "../../generated/acme/chat/v1/chat_pb.js";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import {
  CursorsResponseSchema,
  file_acme_showcase_v1_showcase,
  PositionsResponseSchema,
  ShowcaseService as ShowcaseServiceDesc,
} from "../../generated/acme/showcase/v1/showcase_pb.js";
import { ShowcaseAdminService, ShowcaseService } from "../../generated/acme/showcase/v1/showcase_protocast.js";
import {
  call as callExtension,
  ChannelRulesSchema,
  Delivery,
  DeliverySchema,
  file_protocast_v1_options,
  Overflow,
  OverflowSchema,
} from "../../generated/protocast/v1/options_pb.js";

// These tests need no buf: the descriptors embedded in protobuf-es output carry the same
// options as a CodeGeneratorRequest (without source positions).

const sendMessage = ChatServiceDesc.method.sendMessage;
const docEdits = ShowcaseServiceDesc.method.docEdits;
const service = { scope: "svc", timeoutMs: 0 };

function declaredCall(init: Partial<DeclaredCall>): DeclaredCall {
  return { delivery: Delivery.UNSPECIFIED, timeoutMs: 0, scope: "", ...init };
}

function expectOneProblem(problems: Problem[], message: RegExp, element: string): void {
  expect(problems).toHaveLength(1);
  expect(problems[0]?.message).toMatch(message);
  expect(problems[0]?.element).toBe(element);
  expect(problems[0]?.where).toMatch(/\.proto$/);
}

describe("resolveCall", () => {
  it.each([
    ["no option", undefined, { delivery: "at-most-once", idempotent: false }],
    ["idempotent: true", { idempotent: true }, { delivery: "exactly-once", idempotent: true }],
    ["idempotent: false", { idempotent: false }, { delivery: "at-most-once", idempotent: false }],
    ["at-most-once", { delivery: Delivery.AT_MOST_ONCE }, { delivery: "at-most-once", idempotent: false }],
    ["at-most-once, idempotent", { delivery: Delivery.AT_MOST_ONCE, idempotent: true }, { delivery: "at-most-once", idempotent: true }],
    ["at-least-once, idempotent", { delivery: Delivery.AT_LEAST_ONCE, idempotent: true }, { delivery: "at-least-once", idempotent: true }],
    ["exactly-once", { delivery: Delivery.EXACTLY_ONCE }, { delivery: "exactly-once", idempotent: true }],
    ["exactly-once, idempotent", { delivery: Delivery.EXACTLY_ONCE, idempotent: true }, { delivery: "exactly-once", idempotent: true }],
  ] as const)("%s", (_, init, expected) => {
    const problems: Problem[] = [];
    const declared = init === undefined ? undefined : declaredCall(init);
    expect(resolveCall(sendMessage, declared, service, problems)).toEqual({ kind: "call", timeoutMs: 10_000, scope: "svc", ...expected });
    expect(problems).toEqual([]);
  });

  it("takes the timeout of the method, then the service, then 10 s", () => {
    const timeout = (method: number, svc: number) => resolveCall(sendMessage, declaredCall({ timeoutMs: method }), { scope: "", timeoutMs: svc }, [])?.timeoutMs;
    expect(timeout(0, 0)).toBe(10_000);
    expect(timeout(0, 300)).toBe(300);
    expect(timeout(50, 300)).toBe(50);
  });

  it("takes the scope of the method, then the service, then none", () => {
    expect(resolveCall(sendMessage, declaredCall({ scope: "own" }), service, [])?.scope).toBe("own");
    expect(resolveCall(sendMessage, undefined, { scope: "", timeoutMs: 0 }, [])?.scope).toBe("");
  });

  it("rejects an at-least-once call that does not declare idempotent: true (PROTOCOL.md 7.2)", () => {
    const problems: Problem[] = [];
    expect(resolveCall(sendMessage, declaredCall({ delivery: Delivery.AT_LEAST_ONCE }), service, problems)).toBeUndefined();
    expectOneProblem(problems, /at-least-once but no idempotent: true/, "acme.chat.v1.ChatService.SendMessage");
  });

  it.each([Delivery.EXACTLY_ONCE, Delivery.AT_LEAST_ONCE])("rejects delivery %i with idempotent: false", (delivery) => {
    const problems: Problem[] = [];
    expect(resolveCall(sendMessage, declaredCall({ delivery, idempotent: false }), service, problems)).toBeUndefined();
    expectOneProblem(problems, /but idempotent: false/, "acme.chat.v1.ChatService.SendMessage");
  });

  it("rejects a delivery value it does not know", () => {
    const problems: Problem[] = [];
    expect(resolveCall(sendMessage, declaredCall({ delivery: 9 as Delivery }), service, problems)).toBeUndefined();
    expectOneProblem(problems, /unknown value 9/, "acme.chat.v1.ChatService.SendMessage");
  });
});

describe("resolveChannel", () => {
  const pattern = "org/{org_id}/doc/{doc_id}";
  // `key` is the resolved conflation key of the stream message: "" for none, undefined when
  // the key itself was reported.
  const channel = (init: Parameters<typeof create<typeof ChannelRulesSchema>>[1], key: string | undefined, problems: Problem[] = []) =>
    resolveChannel(docEdits, create(ChannelRulesSchema, { pattern, ...init }), service, key, problems);

  it("applies the defaults", () => {
    expect(channel({}, "")?.rules).toEqual({
      kind: "channel",
      pattern,
      params: { orgId: "org_id", docId: "doc_id" },
      delivery: "at-least-once",
      overflow: "disconnect",
      maxMembers: 0,
      readScope: "svc",
      publishScope: "svc",
      clientPublish: false,
      presence: false,
      historySize: 0,
      historyTtlMs: 0,
      conflationKey: "",
    });
  });

  it("drops the oldest frames of an at-most-once channel by default", () => {
    expect(channel({ delivery: Delivery.AT_MOST_ONCE }, "")?.rules.overflow).toBe("drop-oldest");
    expect(channel({ delivery: Delivery.EXACTLY_ONCE }, "")?.rules.overflow).toBe("disconnect");
  });

  it("takes the publish scope from the read scope, and the read scope from the service", () => {
    expect(channel({ readScope: "r" }, "")?.rules).toMatchObject({ readScope: "r", publishScope: "r" });
    expect(channel({ readScope: "r", publishScope: "w", clientPublish: true }, "")?.rules).toMatchObject({ readScope: "r", publishScope: "w" });
  });

  it("orders params and fields by the pattern", () => {
    const swapped = resolveChannel(docEdits, create(ChannelRulesSchema, { pattern: "doc/{doc_id}/org/{org_id}" }), service, "", []);
    expect(swapped?.rules.params).toEqual({ docId: "doc_id", orgId: "org_id" });
    expect(Object.keys(swapped?.rules.params ?? {})).toEqual(["docId", "orgId"]);
    expect(swapped?.variables.map((f) => f.name)).toEqual(["doc_id", "org_id"]);
  });

  it("carries the conflation key of the message", () => {
    expect(channel({ delivery: Delivery.AT_MOST_ONCE, overflow: Overflow.CONFLATE }, "userId")?.rules.conflationKey).toBe("userId");
  });

  it("rejects conflation without a key", () => {
    const problems: Problem[] = [];
    expect(channel({ delivery: Delivery.AT_MOST_ONCE, overflow: Overflow.CONFLATE }, "", problems)).toBeUndefined();
    expectOneProblem(problems, /needs a conflation key/, "acme.showcase.v1.ShowcaseService.DocEdits");
  });

  it("fails without another problem when the message's key was already reported", () => {
    const problems: Problem[] = [];
    expect(channel({ delivery: Delivery.AT_MOST_ONCE, overflow: Overflow.CONFLATE }, undefined, problems)).toBeUndefined();
    expect(problems).toEqual([]);
  });

  it("reports every problem of one channel", () => {
    const problems: Problem[] = [];
    expect(channel({ pattern: "doc/{doc_id}", overflow: Overflow.DROP_NEWEST, publishScope: "w" }, "", problems)).toBeUndefined();
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/field acme.showcase.v1.DocEditsRequest.org_id is not in pattern/),
      expect.stringMatching(/at-least-once but its overflow policy drop-newest drops frames/),
      expect.stringMatching(/publish_scope "w" is set but clients may not publish/),
    ]);
  });
});

describe("resolveEvent", () => {
  it("applies the defaults", () => {
    expect(resolveEvent(ChatServiceDesc.method.notices, { delivery: Delivery.UNSPECIFIED, scope: "" }, service, [])).toEqual({ kind: "event", delivery: "at-least-once", scope: "svc" });
    expect(resolveEvent(ChatServiceDesc.method.notices, { delivery: Delivery.AT_MOST_ONCE, scope: "own" }, service, [])).toEqual({ kind: "event", delivery: "at-most-once", scope: "own" });
  });

  it("rejects a request with fields", () => {
    const problems: Problem[] = [];
    expect(resolveEvent(ChatServiceDesc.method.roomEvents, { delivery: Delivery.UNSPECIFIED, scope: "" }, service, problems)).toBeUndefined();
    expectOneProblem(problems, /has fields \(room_id\)/, "acme.chat.v1.ChatService.RoomEvents");
  });
});

describe("resolveConflationKey", () => {
  it("maps the proto field name to the TypeScript name", () => {
    expect(resolveConflationKey(TypingResponseSchema, "user", [])).toBe("user");
    expect(resolveConflationKey(CursorsResponseSchema, "user_id", [])).toBe("userId");
    expect(resolveConflationKey(PositionsResponseSchema, "", [])).toBe("");
  });

  it("rejects a key that names no field", () => {
    const problems: Problem[] = [];
    expect(resolveConflationKey(PositionsResponseSchema, "vehicle", problems)).toBeUndefined();
    expectOneProblem(problems, /"vehicle" is not a field/, "acme.showcase.v1.PositionsResponse");
    expect(problems[0]?.fix).toContain("vehicle_id, lat, lng");
  });
});

describe("option enums", () => {
  // Wire names are the enum value names without prefix, in kebab case.
  it.each([
    ["Delivery", DeliverySchema, DELIVERY_NAMES],
    ["Overflow", OverflowSchema, OVERFLOW_NAMES],
  ] as const)("%s: every value but 0 has a wire name", (_, schema, names) => {
    const expected = schema.values.filter((v) => v.number !== 0).map((v) => [v.number, v.localName.toLowerCase().replaceAll("_", "-")]);
    expect([...names.entries()]).toEqual(expected);
  });
});

describe("findOptionExtensions", () => {
  it("finds the extensions among the request's files", () => {
    const ext = findOptionExtensions([file_acme_chat_v1_chat, file_protocast_v1_options]);
    expect(ext?.call.typeName).toBe(callExtension.typeName);
    expect(ext?.call.number).toBe(callExtension.number);
    expect(ext?.message.extendee.typeName).toBe("google.protobuf.MessageOptions");
  });

  it("returns undefined when no file declares them", () => {
    expect(findOptionExtensions([])).toBeUndefined();
  });
});

describe("resolveSchema", () => {
  it("resolves the embedded descriptors to the rules that buf generated", () => {
    const { files, problems } = resolveSchema([file_protocast_v1_options, file_acme_chat_v1_chat, file_acme_showcase_v1_showcase], [file_protocast_v1_options, file_acme_chat_v1_chat, file_acme_showcase_v1_showcase]);
    expect(problems).toEqual([]);
    // options.proto has no service, so it gets no entry.
    expect(files.map((f) => f.file.name)).toEqual(["acme/chat/v1/chat", "acme/showcase/v1/showcase"]);
    const generated = new Map([ChatService, ShowcaseService, ShowcaseAdminService].map((d) => [d.typeName, d]));
    for (const { services } of files) {
      for (const { service, methods } of services) {
        const def = generated.get(service.typeName);
        for (const { method, rules } of methods) {
          expect(def?.byPath.get(`${service.typeName}/${method.name}`)?.rules, method.name).toEqual(rules);
        }
      }
    }
  });
});
