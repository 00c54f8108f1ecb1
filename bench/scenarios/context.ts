import { join } from "node:path";
import type { Placement } from "../lib/machine.js";
import type { ConnectCommand, Peer, ServerArgs, ServerCommand, ServerMode, ServerReport } from "../lib/messages.js";
import type { Plan } from "../lib/plan.js";
import { startWorker, type Worker } from "../lib/proc.js";
import type { Sample } from "../lib/report.js";

export interface RunContext {
  readonly plan: Plan;
  readonly placement: Placement;
  /** Peers whose server processes run under --cpu-prof, and where the profiles go. */
  readonly profile: { readonly peers: readonly Peer[]; readonly dir: string } | undefined;
  /** Where Protocast's servers keep sessions; undefined: in memory (the default). */
  readonly sessionStore?: "redis" | undefined;
  readonly round: number;
  log(line: string): void;
}

/** One scenario: runs a round for one peer and returns its samples. */
export interface Scenario {
  /** Name used by --only and in profile file names. */
  readonly id: string;
  run(peer: Peer, ctx: RunContext): Promise<Sample[]>;
}

export type ServerWorker = Worker<ServerReport, ServerCommand>;

/** File that receives the server's CPU profile of this run; undefined when not profiled. */
function profileFile(ctx: RunContext, peer: Peer, scenario: string): string | undefined {
  return ctx.profile?.peers.includes(peer) ? join(ctx.profile.dir, `${scenario}-${peer}-r${ctx.round}.cpuprofile`) : undefined;
}

/**
 * Starts a peer's server (on the server CPU) and a client process (on the client CPU) at the
 * same time, waits for the server's port and tells the client. Runs `body`, then stops both.
 */
export async function withServerAndClient<CR extends { readonly type: string }, CC extends { readonly type: string }, T>(
  ctx: RunContext,
  peer: Peer,
  scenario: string,
  mode: ServerMode,
  client: { readonly file: string; readonly args: object; readonly sameCpu?: boolean; readonly profiled?: boolean },
  body: (server: ServerWorker, client: Worker<CR, CC | ConnectCommand>) => Promise<T>,
): Promise<T> {
  const { placement, plan } = ctx;
  const profile = profileFile(ctx, peer, scenario);
  const serverArgs: ServerArgs = {
    mode,
    payloadBytes: plan.payloadBytes,
    ...(profile === undefined ? {} : { profile }),
    ...(ctx.sessionStore === undefined ? {} : { sessionStore: ctx.sessionStore }),
  };
  const server = startWorker<ServerReport, ServerCommand>(`${peer} server`, {
    file: `peers/${peer}-server.ts`,
    args: serverArgs,
    cpu: placement.serverCpu,
    taskset: placement.taskset,
    nodeFlags: ["--expose-gc"],
  });
  const clients = startWorker<CR, CC | ConnectCommand>(`${peer} client`, {
    file: client.file,
    args: client.profiled === true && profile !== undefined ? { ...client.args, profile: profile.replace(/\.cpuprofile$/, "-client.cpuprofile") } : client.args,
    cpu: client.sameCpu === true ? placement.rpcClientCpu : placement.clientCpu,
    taskset: placement.taskset,
  });
  try {
    const { port } = await server.next("ready", 30_000);
    clients.send({ type: "connect", port });
    return await body(server, clients);
  } finally {
    // Clients first: a client that sees its server vanish mid-run treats it as a failure.
    await clients.stop();
    await server.stop();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
