// The principal index of the server: one session is held without a Set, a second makes one,
// and removing down to one or none gives the plain forms back.
import { describe, expect, it } from "vitest";
import { SessionsByPrincipal } from "../../runtime/server/sessions-by-principal.js";

describe("SessionsByPrincipal", () => {
  it("counts, lists and removes sessions per principal", () => {
    const idx = new SessionsByPrincipal<{ n: number }>();
    const a = { n: 1 };
    const b = { n: 2 };
    const c = { n: 3 };
    expect(idx.count("p")).toBe(0);
    expect([...idx.of("p")]).toEqual([]);
    idx.add("p", a);
    idx.add("p", a); // twice: still one
    expect(idx.count("p")).toBe(1);
    idx.add("p", b);
    idx.add("q", c);
    expect([...idx.of("p")]).toEqual([a, b]);
    expect(new Map([...idx.entries()].map(([p, s]) => [p, [...s]]))).toEqual(new Map([["p", [a, b]], ["q", [c]]]));
    idx.delete("p", a);
    expect([...idx.of("p")]).toEqual([b]);
    idx.delete("p", c); // not its session: nothing changes
    expect(idx.count("p")).toBe(1);
    idx.delete("p", b);
    expect(idx.count("p")).toBe(0);
    expect([...idx.entries()].map(([p]) => p)).toEqual(["q"]);
  });
});
