// Protocast as a team uses it, outside this repository: the packed tarball installed into an
// empty folder, `protocast init`, the test's own .proto, `protocast gen`, tsc, then the server
// and clients under plain `node` on Node 20 and 26, and a bundled page in Chromium.
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { readFile, readdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, skipBrowser } from "../browser/support.js";
import { SERVER_ONLY, bundleBrowser, type BundleReport } from "../../bench/lib/bundle.js";

/** Optional peers a browser client may use, only when the application imports their entry. */
const OPTIONAL_CLIENT_PEERS = /(^|\/)node_modules\/@opentelemetry\/|(^|\/)runtime\/adapters\/otel\//;
import { expectOk, freshApp, nodeBinary, packTarball, sh, startServer, type Server } from "./fresh-app.js";

const UNAUTHENTICATED = 16;
const NODES = [20, 26] as const;

let dir = "";
const nodes = new Map<number, string>();
const servers = new Map<number, Server>();

beforeAll(async () => {
  const tarball = await packTarball();
  dir = await freshApp(tarball);
  for (const major of NODES) {
    const node = await nodeBinary(major);
    nodes.set(major, node);
    servers.set(major, await startServer(node, dir));
  }
}, 600_000);

afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.stop()));
});

function url(serverNode: number): string {
  return `ws://127.0.0.1:${servers.get(serverNode)!.port}/protocast`;
}

async function client(clientNode: number, serverNode: number, mode = "exchange"): Promise<Record<string, unknown>> {
  const r = await sh(nodes.get(clientNode)!, ["dist/client.js", url(serverNode), mode], dir, process.env, 30_000);
  expectOk(r, `client on Node ${clientNode} (${mode})`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

describe("the packed package in a fresh project", () => {
  for (const serverNode of NODES) {
    for (const clientNode of NODES) {
      it(`a Node ${clientNode} client and a Node ${serverNode} server exchange a call, a channel event with presence and a push`, async () => {
        const r = await client(clientNode, serverNode);
        const user = `node${clientNode}`;
        expect(r["node"]).toMatch(new RegExp(`^v${clientNode}\\.`));
        expect(r["transport"]).toBe("websocket");
        expect(r["members"]).toContain(user);
        expect(r["event"]).toEqual({ number: r["number"], text: `hello from ${user}`, author: user });
        expect(r["alert"]).toBe(`note ${String(r["number"])} added`);
      });
    }
    it(`a refused credential on a Node ${serverNode} server surfaces at once and stops reconnecting`, async () => {
      const r = await client(serverNode, serverNode, "refused");
      expect(r["code"]).toBe(UNAUTHENTICATED);
      expect(r["ms"]).toBeLessThan(1000);
      expect(r["state"]).toBe("closed");
      expect(r["reconnects"]).toBe(0);
      expect(r["callCode"]).toBe(UNAUTHENTICATED);
    });
  }
});

describe.skipIf(skipBrowser)("the packed package in a browser", () => {
  let bundle: BundleReport;
  let viteModules: string[];
  const viteFiles = new Map<string, string>();
  let browser: Browser;
  let page: HttpServer;
  let pageUrl = "";

  beforeAll(async () => {
    bundle = await bundleBrowser("src/browser.ts", dir, /node_modules\/protocast\//);
    expectOk(await sh("npx", ["--no-install", "vite", "build"], dir), "vite build");
    viteModules = JSON.parse(await readFile(join(dir, "web-modules.json"), "utf8")) as string[];
    for (const name of await readdir(join(dir, "web"), { recursive: true })) {
      if (/\.(js|html)$/.test(name)) viteFiles.set(`/vite/${name}`, await readFile(join(dir, "web", name), "utf8"));
    }
    page = createHttpServer((req, res) => {
      const path = req.url?.split("?")[0] ?? "/";
      const vite = path === "/vite/" ? viteFiles.get("/vite/index.html") : viteFiles.get(path.replace(/^\/assets\//, "/vite/assets/"));
      if (path.startsWith("/vite/") || path.startsWith("/assets/")) {
        if (vite === undefined) res.writeHead(404).end();
        else res.writeHead(200, { "content-type": path.endsWith(".js") ? "text/javascript" : "text/html" }).end(vite);
      } else if (path === "/app.js") {
        res.writeHead(200, { "content-type": "text/javascript" }).end(bundle.js);
      } else {
        res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script type="module" src="/app.js"></script>');
      }
    });
    await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
    pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => page?.close(r));
  });

  async function runPage(mode: string, build: "esbuild" | "vite" = "esbuild"): Promise<Record<string, unknown>> {
    const tab = await browser.newPage();
    try {
      await tab.goto(`${pageUrl}${build === "vite" ? "vite/" : ""}?mode=${mode}&url=${encodeURIComponent(url(NODES[0]))}`);
      await tab.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 20_000 });
      return (await tab.evaluate(() => (window as unknown as { result: unknown }).result)) as Record<string, unknown>;
    } finally {
      await tab.close();
    }
  }

  it("the client bundle holds no server, Node or engine code", () => {
    const forbidden = bundle.inputs.filter((p) => SERVER_ONLY.test(p));
    expect(forbidden).toEqual([]);
    // Tracing is opt-in through "protocast/otel": a client that does not import it bundles none of it.
    expect(bundle.inputs.filter((p) => OPTIONAL_CLIENT_PEERS.test(p))).toEqual([]);
    expect(bundle.inputs.some((p) => p.includes("node_modules/protocast/dist/runtime/client/"))).toBe(true);
    console.log(
      `browser bundle of the test's client: ${(bundle.bytes / 1024).toFixed(1)} kB minified, ${(bundle.gzipBytes / 1024).toFixed(1)} kB gzip; ` +
        `Protocast's part ${(bundle.ownBytes / 1024).toFixed(1)} kB minified, ~${(bundle.ownGzipBytes / 1024).toFixed(1)} kB gzip`,
    );
  });

  it("the Vite build of the page holds no server, Node or engine code", () => {
    expect(viteModules.filter((p) => SERVER_ONLY.test(p) || OPTIONAL_CLIENT_PEERS.test(p))).toEqual([]);
    expect(viteModules.some((p) => p.includes("node_modules/protocast/dist/runtime/client/"))).toBe(true);
  });

  it("the Vite-built page exchanges a call, a channel event with presence and a push", async () => {
    const r = await runPage("exchange", "vite");
    expect(r["error"]).toBeUndefined();
    expect(r["transport"]).toBe("websocket");
    expect(r["event"]).toEqual({ number: r["number"], text: "hello from browser", author: "browser" });
  });

  it("a bundled page exchanges a call, a channel event with presence and a push", async () => {
    const r = await runPage("exchange");
    expect(r["error"]).toBeUndefined();
    expect(r["transport"]).toBe("websocket");
    expect(r["members"]).toContain("browser");
    expect(r["event"]).toEqual({ number: r["number"], text: "hello from browser", author: "browser" });
    expect(r["alert"]).toBe(`note ${String(r["number"])} added`);
  });

  it("a refused credential gives an UNAUTHENTICATED error event within a second and no reconnect loop", async () => {
    const r = await runPage("refused");
    expect(r["error"]).toBeUndefined();
    expect(r["code"]).toBe(UNAUTHENTICATED);
    expect(r["ms"]).toBeLessThan(1000);
    expect(r["state"]).toBe("closed");
    expect(r["reconnects"]).toBe(0);
    expect(r["callCode"]).toBe(UNAUTHENTICATED);
  });
});

