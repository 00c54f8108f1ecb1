// Browser page of the outside-repository test: the page's script sets window.result.
import { exchange, refused } from "./exchange.js";

const params = new URLSearchParams(location.search);
const url = params.get("url") ?? "";
const run = params.get("mode") === "refused" ? refused(url) : exchange(url, "browser");
run.then(
  (r) => ((window as unknown as { result: unknown }).result = r),
  (e: unknown) => ((window as unknown as { result: unknown }).result = { error: String(e) }),
);
