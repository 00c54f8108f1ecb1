import { fc, test } from "@fast-check/vitest";
import { expect } from "vitest";
import { FIRST_RETRY_MS, defaultBackoff, firstRetryDelay } from "../../runtime/session/backoff.js";

test.prop([fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 0.999999, noNaN: true })])(
  "the first retry after a drop waits less than FIRST_RETRY_MS and never more than the base",
  (baseMs, r) => {
    const d = firstRetryDelay({ ...defaultBackoff, baseMs }, () => r);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(d).toBeLessThan(Math.min(FIRST_RETRY_MS, baseMs));
    expect(Number.isInteger(d)).toBe(true);
  },
);
