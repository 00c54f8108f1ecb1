// `npm run conformance [-- <ws url>]`: runs every conformance case against the conformance
// service at the URL, or against one this script starts, printing one line per case with the
// PROTOCOL.md section it checks. Exits non-zero when a case fails.
import { startConformanceServer } from "../../examples/conformance/server.js";
import { formatResult, runCases } from "./run-cases.js";

const given = process.argv[2];
const server = given === undefined ? await startConformanceServer({ port: 0 }) : undefined;
const url = given ?? server!.url;
console.log(`protocast.v1 conformance against ${url}`);
const started = Date.now();
const results = await runCases(url, { concurrency: Number(process.env["CONCURRENCY"] ?? 8), onResult: (r) => console.log(formatResult(r)) });
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} of ${results.length} cases passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
await server?.close();
process.exit(failed === 0 ? 0 : 1);
