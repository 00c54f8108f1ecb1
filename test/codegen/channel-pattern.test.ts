import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseChannelPattern, type PatternSegment } from "../../codegen/channel-pattern.js";

function segments(source: string): readonly PatternSegment[] {
  const result = parseChannelPattern(source);
  if (!result.ok) throw new Error(result.issues.map((i) => i.message).join("\n"));
  return result.pattern.segments;
}

function issues(source: string): string[] {
  const result = parseChannelPattern(source);
  return result.ok ? [] : result.issues.map((i) => i.message);
}

describe("parseChannelPattern", () => {
  it("splits literals and variables", () => {
    expect(segments("room/{room_id}")).toEqual([{ literal: "room" }, { variable: "room_id" }]);
    expect(segments("org/{org_id}/doc/{doc_id}")).toEqual([{ literal: "org" }, { variable: "org_id" }, { literal: "doc" }, { variable: "doc_id" }]);
    expect(segments("{a}/{b2_c}")).toEqual([{ variable: "a" }, { variable: "b2_c" }]);
    expect(segments("announcements")).toEqual([{ literal: "announcements" }]);
    expect(segments("v1.feed/x-y_z")).toEqual([{ literal: "v1.feed" }, { literal: "x-y_z" }]);
  });

  it("lists the variables in pattern order", () => {
    const result = parseChannelPattern("doc/{doc_id}/org/{org_id}");
    expect(result.ok && result.pattern.variables).toEqual(["doc_id", "org_id"]);
  });

  it.each([
    ["", /has no pattern/],
    ["/room", /starts or ends with "\/"/],
    ["room/", /starts or ends with "\/"/],
    ["/", /starts or ends with "\/"/],
    ["room//{id}", /empty segment/],
    ["{room_id", /unbalanced or misplaced braces/],
    ["room_id}", /unbalanced or misplaced braces/],
    ["room-{room_id}", /unbalanced or misplaced braces/],
    ["{a}{b}", /unbalanced or misplaced braces/],
    ["{{a}}", /unbalanced or misplaced braces/],
    ["{}", /not a lower_snake_case field name/],
    ["{Room}", /not a lower_snake_case field name/],
    ["{1room}", /not a lower_snake_case field name/],
    ["{a}/{a}", /uses \{a\} twice/],
    ["room */x", /characters other than/],
    ["room/+", /characters other than/],
  ])("rejects %j", (source, message) => {
    const found = issues(source);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  it("reports every issue of a pattern at once", () => {
    expect(issues("/a//{b}/{b}")).toEqual([
      `pattern "/a//{b}/{b}" starts or ends with "/".`,
      `pattern "/a//{b}/{b}" has an empty segment.`,
      `pattern "/a//{b}/{b}" uses {b} twice.`,
    ]);
  });

  it("gives a fix with every issue", () => {
    for (const source of ["", "/a", "a//b", "{a", "{A}", "{a}/{a}", "a*"]) {
      const result = parseChannelPattern(source);
      expect(result.ok).toBe(false);
      if (!result.ok) for (const issue of result.issues) expect(issue.fix).toMatch(/\.$/);
    }
  });

  it("parses back any pattern built from valid segments", () => {
    const literal = fc.stringMatching(/^[A-Za-z0-9._-]{1,8}$/).map((s): PatternSegment => ({ literal: s }));
    const variable = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/).map((s): PatternSegment => ({ variable: s }));
    const pattern = fc
      .array(fc.oneof(literal, variable), { minLength: 1, maxLength: 6 })
      .filter((segs) => {
        const vars = segs.flatMap((s) => ("variable" in s ? [s.variable] : []));
        return new Set(vars).size === vars.length;
      });
    fc.assert(
      fc.property(pattern, (segs) => {
        const source = segs.map((s) => ("literal" in s ? s.literal : `{${s.variable}}`)).join("/");
        expect(segments(source)).toEqual(segs);
      }),
    );
  });
});
