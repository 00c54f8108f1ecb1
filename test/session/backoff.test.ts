import { fc, test } from "@fast-check/vitest";
import { expect } from "vitest";
import { backoffDelay, defaultBackoff } from "../../runtime/session/backoff.js";

test.prop([fc.nat(60), fc.double({ min: 0, max: 0.999999, noNaN: true })])(
  "full-jitter delays stay in [0, min(cap, base * factor^attempt))",
  (attempt, r) => {
    const d = backoffDelay(attempt, defaultBackoff, () => r);
    const ceiling = Math.min(defaultBackoff.capMs, defaultBackoff.baseMs * 2 ** attempt);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(d).toBeLessThan(ceiling);
    expect(Number.isInteger(d)).toBe(true);
  },
);
