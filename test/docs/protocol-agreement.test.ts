// PROTOCOL.md, the .proto comments and the runtime say the same thing: the tables of frame
// kinds, sequencing, reasons, close codes and limits are read from PROTOCOL.md and compared
// with the constants the runtime works from, so that neither can change alone.
import { describe, expect, it } from "vitest";
import { DEFAULT_CALL_TIMEOUT_MS } from "../../codegen/resolve-call.js";
import { EnvelopeSchema } from "../../generated/protocast/v1/envelope_pb.js";
import { CloseCode } from "../../runtime/errors/close-codes.js";
import { FIELD_LIMITS } from "../../runtime/server/field-limits.js";
import { defaultServerLimits as D } from "../../runtime/server/options.js";
import { MAX_IDEMPOTENCY_KEY_BYTES } from "../../runtime/server/call-outcome.js";
import { ACK_EVERY_FRAMES } from "../../runtime/session/sequencer.js";
import { SEQUENCING } from "../../runtime/session/sequencing.js";
import { DEFAULT_DECODE_LIMITS } from "../../runtime/wire/limits.js";
import { readdirSync } from "node:fs";
import { quantities, read, ROOT, section, table, ticked } from "./markdown.js";

const PROTOCOL = read("PROTOCOL.md");
const ENVELOPE_PROTO = read("proto/protocast/v1/envelope.proto");
const OPTIONS_PROTO = read("proto/protocast/v1/options.proto");

/** The comment lines right above `marker` in a .proto file, joined. */
function commentAbove(proto: string, marker: string): string {
  const lines = proto.split("\n");
  const at = lines.findIndex((l) => l.includes(marker));
  if (at < 0) throw new Error(`no "${marker}" in the .proto`);
  const out: string[] = [];
  for (let i = at - 1; i >= 0 && lines[i]!.trim().startsWith("//"); i--) out.unshift(lines[i]!.trim().replace(/^\/\/\s?/, ""));
  return out.join(" ");
}

const frameFields = EnvelopeSchema.fields.filter((f) => f.oneof !== undefined);
const camel = (pascal: string): string => pascal.charAt(0).toLowerCase() + pascal.slice(1);
const kinds = (rule: "always" | "reliable" | "never"): string[] =>
  Object.entries(SEQUENCING)
    .filter(([, r]) => r === rule)
    .map(([k]) => k)
    .sort();

describe("frame kinds (3.3) against envelope.proto's oneof", () => {
  const rows = table(section(PROTOCOL, "3.3 "), "#");

  it("lists every member of Envelope.frame with its field number, and nothing else", () => {
    expect(rows.map((r) => [Number(r[0]), ticked(r[1]!)[0]])).toEqual(frameFields.map((f) => [f.number, f.name]));
  });

  it("gives each kind the sequencing rule the runtime applies", () => {
    const rule = (cell: string): string => (cell === "always" ? "always" : cell === "never" ? "never" : "reliable");
    const byField = new Map(frameFields.map((f) => [f.name, f.localName]));
    expect(Object.fromEntries(rows.map((r) => [byField.get(ticked(r[1]!)[0]!), rule(r[3]!)]))).toEqual({ ...SEQUENCING });
  });
});

describe("sequenced kinds (4.1)", () => {
  const [row] = table(section(PROTOCOL, "4.1 "), "Sequenced (always)");
  const names = (cell: string): string[] => Array.from(cell.matchAll(/\b[A-Z][A-Za-z]+\b/g), (m) => camel(m[0])).filter((n) => n in SEQUENCING);

  it("the three columns are the runtime's table", () => {
    expect(names(row![0]!).sort()).toEqual(kinds("always"));
    expect(names(row![1]!)).toEqual(kinds("reliable"));
    expect(names(row![2]!).filter((n) => n !== "push").sort()).toEqual(kinds("never"));
  });

  it("envelope.proto's comment on Envelope.seq names the same kinds", () => {
    const comment = commentAbove(ENVELOPE_PROTO, "uint64 seq = 1;");
    const always = /Always sequenced: ([^.]+)\./.exec(comment)?.[1]?.split(/,\s*/).map((s) => s.trim());
    expect(always?.sort()).toEqual(kinds("always"));
    expect(comment).toMatch(/Sequenced when reliable: push/);
  });
});

describe("reasons", () => {
  const reasonTable = table(section(PROTOCOL, "11.2 "), "Reason").flatMap((r) => ticked(r[0]!));
  const lostTable = table(section(PROTOCOL, "8.5 "), "Reason").flatMap((r) => ticked(r[0]!));
  // The reasons of the gaps in section 6.4's table of cases.
  const gapReasons = [...new Set(Array.from(section(PROTOCOL, "6.4 ").matchAll(/gap `\{[^}]*"([a-z_]+)"\}`/g), (m) => m[1]!))].sort();

  it("every reason the server sends is in the table of 11.2, 8.5 (SessionLost) or 6.4 (Gap)", () => {
    const known = new Set([...reasonTable, ...lostTable, ...gapReasons]);
    // Not sent to a client: "bad_option" is a configuration error thrown when a server is
    // created; "beyond_sent" is the verdict that closes the connection with 4500 (8.3).
    const local = new Set(["bad_option", "beyond_sent"]);
    const sent = new Set<string>();
    for (const dir of ["runtime/server", "runtime/session"]) {
      for (const file of readdirSync(ROOT + dir)) {
        for (const m of read(`${dir}/${file}`).matchAll(/reason: "([a-z_]+)"/g)) if (!local.has(m[1]!)) sent.add(m[1]!);
      }
    }
    expect([...sent].filter((r) => !known.has(r)).sort()).toEqual([]);
  });

  it("SessionLost reasons: the table of 8.5, the frame table of 3.4 and envelope.proto agree", () => {
    expect(lostTable.sort()).toEqual(["bad_token", "expired", "node_lost", "overflow", "unknown"]);
    const comment = commentAbove(ENVELOPE_PROTO, "string reason = 2;");
    expect([...new Set(Array.from(comment.matchAll(/"([a-z_]+)"/g), (m) => m[1]))].sort()).toEqual(lostTable);
    const row = section(PROTOCOL, "3.4 ").split("\n").find((l) => l.startsWith("| `reason` |") && l.includes("section 8.5"));
    expect([...new Set(ticked(row!.split("|")[3]!))].sort()).toEqual(lostTable);
  });

  it("Gap reasons: section 6.4's cases, the Gap table of 3.4 and envelope.proto's comment", () => {
    expect(gapReasons).toEqual(expect.arrayContaining(["epoch_changed", "history_disabled", "history_expired"]));
    const comment = commentAbove(ENVELOPE_PROTO, "string reason = 3;");
    expect(Array.from(comment.matchAll(/"([a-z_]+)"/g), (m) => m[1]).sort()).toEqual(gapReasons);
    const row = section(PROTOCOL, "3.4 ").split("\n").find((l) => l.startsWith("| `reason` |") && l.includes("section 6.4"));
    expect(ticked(row!.split("|")[3]!).sort()).toEqual(gapReasons);
  });
});

describe(".proto comments that restate the spec", () => {
  it("Error answers the requests section 3.3 lists", () => {
    const row = table(section(PROTOCOL, "3.3 "), "#").find((r) => r[1] === "`error`")!;
    const listed = /Failure of ([^;]+);/.exec(row[4]!)![1]!.replace(" or ", ", ").split(/,\s*/);
    const comment = commentAbove(ENVELOPE_PROTO, "message Error {");
    for (const kind of listed) expect(comment).toContain(kind);
    expect(listed).toContain("Unsubscribe");
  });

  it("max_envelope_bytes bounds what the server accepts and what it sends (2.7)", () => {
    expect(commentAbove(ENVELOPE_PROTO, "uint32 max_envelope_bytes = 6;")).toMatch(/accepts and sends/);
    expect(section(PROTOCOL, "3.4 ")).toMatch(/Largest envelope the server accepts and sends/);
  });

  it("DROP_OLDEST drops the oldest held frames of any channel, as 7.4 and the server do", () => {
    expect(commentAbove(OPTIONS_PROTO, "OVERFLOW_DROP_OLDEST = 2;")).toMatch(/whichever channel/);
    expect(section(PROTOCOL, "7.4 ")).toMatch(/oldest frames are removed until it fits, whichever channel/);
  });

  it("an at-least-once call needs idempotent: true, in 7.2 and in options.proto", () => {
    expect(section(PROTOCOL, "7.2 ")).toMatch(/a call declares `AT_LEAST_ONCE` without `idempotent: true`/);
    expect(commentAbove(OPTIONS_PROTO, "Delivery delivery = 1;")).toMatch(/idempotent: true/);
  });
});

describe("metadata (3.8) against the runtime's defaults", () => {
  const rows = table(section(PROTOCOL, "3.8 "), "Rule");

  it("the rules table gives the server's default bounds and names its options", () => {
    const bounds = Object.fromEntries(rows.filter((r) => r[2] !== "").map((r) => [ticked(r[2]!)[0]!, quantities(r[1]!)[0]]));
    expect(bounds).toEqual({
      maxMetadataKeyBytes: D.maxMetadataKeyBytes,
      maxMetadataValueBytes: D.maxMetadataValueBytes,
      maxMetadataEntries: D.maxMetadataEntries,
      maxMetadataBytes: D.maxMetadataBytes,
    });
  });

  it("envelope.proto numbers the metadata fields as the section says", () => {
    const numbers = Object.fromEntries(
      ["Call", "Publish", "Event"].map((m) => [m, EnvelopeSchema.fields.find((f) => f.name === m.toLowerCase())!.message!.fields.find((f) => f.name === "metadata")?.number]),
    );
    expect(numbers).toEqual({ Call: 6, Publish: 6, Event: 5 });
    expect(section(PROTOCOL, "3.8 ")).toContain("Call.metadata = 6, Publish.metadata = 6, Event.metadata = 5");
  });
});

describe("close codes (11.3) against CloseCode", () => {
  const codes = table(section(PROTOCOL, "11.3 "), "Code").map((r) => Number(r[0]));

  it("every code the runtime names is in the table, and every Protocast code of the table is in the runtime", () => {
    expect(Object.values(CloseCode).filter((c) => !codes.includes(c))).toEqual([]);
    expect(codes.filter((c) => c >= 4000 && !(Object.values(CloseCode) as number[]).includes(c))).toEqual([]);
  });
});

describe("limits (12) against the server's defaults", () => {
  // The default, and for some limits a second number in the "when exceeded" column.
  const rows = new Map(table(section(PROTOCOL, "12. "), "Limit").map((r) => [r[0]!, `${r[1]!} | ${r[3]!}`]));
  const expected: [string, number[]][] = [
    ["Envelope size", [D.maxEnvelopeBytes]],
    ["Entries in one repeated field", [DEFAULT_DECODE_LIMITS.maxRepeated]],
    ["Handshake timeout", [D.handshakeTimeoutMs]],
    ["Calls in flight", [D.maxInflightCalls]],
    ["Subscriptions", [D.maxSubscriptionsPerConnection]],
    ["Channel members", [D.maxMembers]],
    ["Call timeout", [DEFAULT_CALL_TIMEOUT_MS, D.maxCallTimeoutMs]],
    ["Channel history", [D.historySize, D.historyTtlMs]],
    ["Ack delay", [D.ackDelayMs, ACK_EVERY_FRAMES]],
    ["Ack timeout", [D.pingIntervalMs + D.pingTimeoutMs]],
    ["Message rate", [D.rateMessagesPerSecond, D.rateMessagesBurst]],
    ["Byte rate", [D.rateBytesPerSecond, D.rateBytesBurst]],
    ["Refusals in a row", [D.rateViolationsBeforeClose]],
    ["Connections", [D.maxConnectionsPerPrincipal]],
    ["Send buffer", [D.sendHighWaterMark]],
    ["Retransmission buffer", [D.retransmitFrames, D.retransmitBytes]],
    ["Grace period", [D.graceMs]],
    ["Idempotency window", [D.idempotencyKeys, D.idempotencyTtlMs]],
    ["Idempotency records, all principals", [D.maxIdempotencyRecords]],
    ["Connection lifetime", [D.maxConnectionLifetimeMs, D.goawayCloseMs]],
    ["Credential warning lead", [D.refreshLeadMs]],
    ["Close timeout", [D.closeTimeoutMs]],
    ["Metadata", [D.maxMetadataEntries, D.maxMetadataKeyBytes, D.maxMetadataValueBytes, D.maxMetadataBytes]],
  ];

  it.each(expected)("%s", (limit, values) => {
    const cell = rows.get(limit);
    expect(cell, `a row "${limit}"`).toBeDefined();
    for (const v of values) expect(quantities(cell!), `${limit}: ${cell}`).toContain(v);
  });

  it("string fields", () => {
    const cell = rows.get("String fields")!;
    const bounds = Object.fromEntries(Array.from(cell.matchAll(/`(\w+)` ≤ ([\d,]+)/g), (m) => [m[1]!.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()), Number(m[2]!.replace(/,/g, ""))]));
    expect(bounds).toMatchObject({ ...FIELD_LIMITS, idempotencyKey: MAX_IDEMPOTENCY_KEY_BYTES });
  });

  it("the heartbeat defaults of section 9 and the Welcome vector agree with the limits", () => {
    const nine = section(PROTOCOL, "9. ");
    expect(quantities(nine)).toEqual(expect.arrayContaining([D.pingIntervalMs, D.pingTimeoutMs]));
  });
});

describe("status", () => {
  it("no Status note outside the status table at the top", () => {
    const body = PROTOCOL.slice(PROTOCOL.indexOf("## 1. Overview"));
    expect(body.match(/\*\*status:?\*\*|later release/gi) ?? []).toEqual([]);
  });

  it("references to section 17 name no subsection that no longer exists", () => {
    for (const doc of [PROTOCOL, read("README.md")]) expect(doc.match(/(?:section|§)\s*17\.\d/g) ?? []).toEqual([]);
  });
});
