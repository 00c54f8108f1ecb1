import { spawn, type ChildProcess } from "node:child_process";
import { buildDir } from "./build.js";

/** Where a worker runs: a CPU number for taskset, or undefined to let the kernel choose. */
export type Cpu = number | undefined;

export interface WorkerSpec {
  /** Worker module, relative to bench/ (compiled by build.ts before the run). */
  readonly file: string;
  /** JSON-encoded into argv[2]. */
  readonly args: unknown;
  readonly cpu: Cpu;
  /** Extra node flags, e.g. --expose-gc or --cpu-prof. */
  readonly nodeFlags?: readonly string[];
  /** Whether taskset can be used (see machine.ts). */
  readonly taskset: boolean;
}


/**
 * A child process running a compiled worker, with an IPC channel. Messages
 * arrive in order; next() takes the next one of a given type, failing when the worker exits
 * first or the time limit passes.
 */
export class Worker<Report extends { readonly type: string }, Command extends { readonly type: string }> {
  private readonly inbox: Report[] = [];
  private waiter: (() => void) | undefined;
  private exited: string | undefined;
  private readonly exit: Promise<void>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on("message", (m) => {
      this.inbox.push(m as Report);
      this.waiter?.();
    });
    this.exit = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exited = signal !== null ? `signal ${signal}` : `code ${String(code)}`;
        this.waiter?.();
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(command: Command): void {
    if (this.exited === undefined && this.child.connected) this.child.send(command);
  }

  /** The next message of type `type`; messages of other types before it are discarded. */
  async next<T extends Report["type"]>(type: T, timeoutMs: number): Promise<Extract<Report, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m !== undefined) {
        if (m.type === type) return m as Extract<Report, { type: T }>;
        continue;
      }
      if (this.exited !== undefined) throw new Error(`${this.name} exited (${this.exited}) while the harness waited for "${type}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name} sent no "${type}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiter = done;
      });
      this.waiter = undefined;
    }
  }

  /** Asks the worker to stop, then kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited !== undefined) return;
    this.send({ type: "stop" } as Command);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.exited === undefined) this.child.kill("SIGKILL");
  }
}

/** Starts a worker; stdout and stderr go to the harness's own streams. */
export function startWorker<R extends { readonly type: string }, C extends { readonly type: string }>(name: string, spec: WorkerSpec): Worker<R, C> {
  const node = [...(spec.nodeFlags ?? []), `${buildDir}${spec.file.replace(/\.ts$/, ".mjs")}`, JSON.stringify(spec.args)];
  const [command, argv] =
    spec.taskset && spec.cpu !== undefined ? ["taskset", ["-c", String(spec.cpu), process.execPath, ...node]] : [process.execPath, node];
  const child = spawn(command, argv as string[], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Worker<R, C>(name, child);
}

/** For workers: the JSON argument their parent passed. */
export function workerArgs<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error("this is a bench worker; start it through bench/run.ts");
  return JSON.parse(raw) as T;
}

/** For workers: sends a report to the parent. */
export function report(message: { readonly type: string }): void {
  process.send?.(message);
}

/** For workers: calls `handler` with every command from the parent; "stop" ends the process. */
export function onCommand<C extends { readonly type: string }>(handler: (command: C) => void | Promise<void>, stop: () => Promise<void>): void {
  process.on("message", (m) => {
    const command = m as C;
    if (command.type === "stop") {
      void stop()
        .catch(() => undefined)
        .finally(() => process.exit(0));
      return;
    }
    Promise.resolve(handler(command)).catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
  });
  // The parent going away must not leave a worker behind.
  process.on("disconnect", () => process.exit(0));
}
