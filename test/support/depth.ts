/**
 * How many random cases the searching suites try. `npm test` runs the everyday depth, sized so
 * that the whole suite stays short; `npm run test:deep` sets PROTOCAST_TEST_DEPTH=deep and runs
 * the same properties with several times the cases (CI runs both). Only suites whose value grows
 * with the count use this: the generated codecs against protobuf-es, the envelope codec's
 * compatibility properties, the socket fuzz and the delivery guarantees under random faults. The deep run also holds the benchmark harness's
 * smoke run (see vitest.config.ts).
 */
export const DEEP = process.env["PROTOCAST_TEST_DEPTH"] === "deep";

/** `everyday` cases in `npm test`, `deep` (by default five times as many) in the deep run. */
export function runs(everyday: number, deep = everyday * 5): number {
  return DEEP ? deep : everyday;
}
