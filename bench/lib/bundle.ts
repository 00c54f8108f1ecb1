// Bundles a browser entry with esbuild and says what went into it, so tests can check that no
// server or Node code reaches a page and benchmarks can report the size.
import { gzipSync } from "node:zlib";
import { build, type Metafile } from "esbuild";

export interface BundleReport {
  readonly js: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  /** Input files with code in the output (tree-shaken ones left out), relative to the working folder. */
  readonly inputs: readonly string[];
  /** Bytes of the minified output that come from inputs matching `own`. */
  readonly ownBytes: number;
  /** Their share of the gzipped bundle (an estimate, in proportion to their minified bytes). */
  readonly ownGzipBytes: number;
}

export async function bundleBrowser(entry: string, workingDir: string, own: RegExp, tsconfig?: string): Promise<BundleReport> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: workingDir,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    legalComments: "none",
    logLevel: "silent",
    ...(tsconfig === undefined ? {} : { tsconfig }),
  });
  const js = result.outputFiles[0]?.text ?? "";
  const meta: Metafile = result.metafile;
  const output = Object.values(meta.outputs)[0];
  let ownBytes = 0;
  for (const [path, info] of Object.entries(output?.inputs ?? {})) if (own.test(path)) ownBytes += info.bytesInOutput;
  const bytes = Buffer.byteLength(js);
  const gzipBytes = gzipSync(js, { level: 9 }).length;
  return {
    js,
    bytes,
    gzipBytes,
    inputs: Object.entries(output?.inputs ?? {}).filter(([, info]) => info.bytesInOutput > 0).map(([path]) => path),
    ownBytes,
    // Minified code compresses about evenly, so the share of the whole is a fair estimate.
    ownGzipBytes: Math.round((ownBytes / Math.max(1, bytes)) * gzipBytes),
  };
}

/** Inputs that must never reach a browser bundle. */
export const SERVER_ONLY = /(^|\/)node_modules\/(ws|ioredis|@nats-io|pino|prom-client)\/|^node:|(^|\/)(dist\/)?runtime\/(server|adapters)\//;
