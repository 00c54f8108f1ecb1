// Node client of the outside-repository test: prints one JSON line with what it saw.
import { exchange, refused } from "./exchange.js";

const [url, mode] = process.argv.slice(2);
if (url === undefined) throw new Error("usage: node dist/client.js <url> [exchange|refused]");
const result = mode === "refused" ? await refused(url) : await exchange(url, `node${process.versions.node.split(".")[0]}`);
console.log(JSON.stringify({ node: process.version, ...result }));
