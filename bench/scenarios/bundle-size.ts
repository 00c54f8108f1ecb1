import { fileURLToPath } from "node:url";
import { bundleBrowser } from "../lib/bundle.js";
import type { Peer } from "../lib/messages.js";
import type { Sample } from "../lib/report.js";
import type { RunContext, Scenario } from "./context.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Bytes a browser client library adds to a page: the same small client (a call, a channel, a
 * direct event) bundled and minified with esbuild, counting only the library's own code
 * (Protocast's runtime and its generated envelope codec, without @bufbuild/protobuf and the
 * service's generated code; socket.io-client with
 * its dependencies). Raw ws needs no library in a browser, so its figure is 0. Deterministic:
 * one run is enough, and the harness calls it once per round for all peers.
 */
export const bundleSize: Scenario & { readonly allPeersAtOnce: true } = {
  id: "browser-bundle",
  allPeersAtOnce: true,
  async run(_peer: Peer, _ctx: RunContext): Promise<Sample[]> {
    const tsconfig = fileURLToPath(new URL("../../tsconfig.json", import.meta.url));
    const protocast = await bundleBrowser("bench/scenarios/bundle/protocast-client.ts", root, /(^|\/)(runtime|generated\/protocast)\//, tsconfig);
    const sio = await bundleBrowser("bench/scenarios/bundle/socketio-client.ts", root, /(^|\/)node_modules\//, tsconfig);
    return [
      { metric: "browser-bundle", peer: "protocast", value: protocast.ownBytes },
      { metric: "browser-bundle", peer: "socketio", value: sio.ownBytes },
      { metric: "browser-bundle", peer: "ws", value: 0 },
      { metric: "browser-bundle:gzip", peer: "protocast", value: protocast.ownGzipBytes },
      { metric: "browser-bundle:gzip", peer: "socketio", value: sio.ownGzipBytes },
      { metric: "browser-bundle:gzip", peer: "ws", value: 0 },
    ];
  },
};
