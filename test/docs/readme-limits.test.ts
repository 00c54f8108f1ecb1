// README's limits table against the server's defaults: every option it names has the default
// the runtime applies, and the actions it lists agree with PROTOCOL.md section 12. The NATS
// broker's options table likewise against the broker's defaults.
import { describe, expect, it } from "vitest";
import { defaultNatsBrokerOptions } from "../../runtime/adapters/nats/nats-broker.js";
import { defaultBrokerFeedOptions } from "../../runtime/adapters/shared/broker-options.js";
import { defaultServerLimits } from "../../runtime/server/options.js";
import { DEFAULT_DECODE_LIMITS } from "../../runtime/wire/limits.js";
import { quantities, read, section, table, ticked } from "./markdown.js";

const README = read("README.md");
const rows = table(section(README, "Security model and limits"), "option");
const defaults = defaultServerLimits as unknown as Record<string, number>;

describe("README limits table", () => {
  const named = rows.filter((r) => ticked(r[0]!).some((n) => n in defaults));

  it("names most of the server's limits", () => {
    const listed = new Set(named.flatMap((r) => ticked(r[0]!)));
    expect(Object.keys(defaults).filter((k) => !listed.has(k) && !["ackDelayMs", "historySize", "historyTtlMs", "goawayCloseMs", "closeTimeoutMs", "refreshLeadMs"].includes(k))).toEqual([]);
  });

  it.each(named.map((r) => [r[0]!, r] as const))("%s", (_, row) => {
    const options = ticked(row[0]!).filter((n) => n in defaults);
    // "a / b" options have "x / y" defaults, in the same order.
    const values = row[1]!.split(" / ");
    expect(values.length === options.length || options.length === 1, `as many defaults as options in "${row[1]}"`).toBe(true);
    options.forEach((option, i) => {
      expect(quantities(values[options.length === 1 ? 0 : i]!)[0], `${option} in "${row[1]}"`).toBe(defaults[option]);
    });
  });

  it("decoder rows: repeated entries close 1009, groups and big numbers 4500, as PROTOCOL.md 3.2 and 12 say", () => {
    const repeated = rows.find((r) => r[0]!.includes("repeated"))!;
    expect(quantities(repeated[1]!)[0]).toBe(DEFAULT_DECODE_LIMITS.maxRepeated);
    expect(repeated[2]).toMatch(/close 1009/);
    expect(table(section(read("PROTOCOL.md"), "12. "), "Limit").find((r) => r[0] === "Entries in one repeated field")?.[3]).toBe("Close 1009");
    expect(rows.find((r) => r[0]!.includes("groups"))?.[2]).toMatch(/close 4500/);
  });
});

describe("README NATS broker options table", () => {
  const natsRows = table(section(README, "Scale out"), "NATS broker option");
  const natsDefaults: Record<string, number> = { ...defaultBrokerFeedOptions, ...defaultNatsBrokerOptions };

  it("names every numeric option of createNatsBroker", () => {
    const listed = new Set(natsRows.flatMap((r) => ticked(r[0]!)));
    expect(Object.keys(natsDefaults).filter((k) => !listed.has(k))).toEqual([]);
  });

  it.each(natsRows.filter((r) => ticked(r[0]!).some((n) => n in natsDefaults)).map((r) => [r[0]!, r] as const))("%s", (_, row) => {
    const [option] = ticked(row[0]!);
    expect(quantities(row[1]!)[0], `${option} in "${row[1]}"`).toBe(natsDefaults[option!]);
  });
});
