import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

/**
 * The V8 sampling profiler of the current thread, started and stopped around exactly the part
 * being measured (unlike node --cpu-prof, which covers start-up and module loading as well).
 * The file is a .cpuprofile that Chrome DevTools and bench/tools/profile-summary.ts read.
 */
export class CpuProfiler {
  private session: Session | undefined;

  constructor(private readonly file: string) {}

  async start(): Promise<void> {
    if (this.session !== undefined) return;
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    // 100 µs between samples: fine enough for a burst that lasts a fraction of a second.
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    this.session = session;
  }

  async stop(): Promise<void> {
    const session = this.session;
    if (session === undefined) return;
    this.session = undefined;
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    writeFileSync(this.file, JSON.stringify(profile));
  }
}
