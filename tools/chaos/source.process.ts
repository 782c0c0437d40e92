import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, readFileSync, WriteStream } from 'node:fs';
import { dirname, resolve } from 'node:path';

const spawned = new Set<ChildProcess>();

/** Remembers a child so {@link killSpawned} can take it down if the orchestrator is interrupted. */
export function trackChild(child: ChildProcess): void {
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
}

/** SIGKILLs every tracked child still running (synchronous: usable in an exit handler). */
export function killSpawned(): void {
  for (const child of spawned) child.kill('SIGKILL');
}

/** The repository root. */
export const ROOT = resolve(__dirname, '../..');

/**
 * Environment for running TypeScript from source, as tools/scripts/dev.mjs builds it (that file
 * is ESM, which jest cannot import into a CommonJS test).
 */
export function sourceEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SWC_NODE_PROJECT: `${ROOT}/tsconfig.base.json`,
    TS_NODE_PROJECT: `${ROOT}/tsconfig.base.json`,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...extra,
  };
}

export interface SourceProcess {
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  running(): boolean;
}

/** Spawns `node -r @swc-node/register entry ...args`, stdout and stderr appended to `logFile`. */
export function spawnSource(
  entry: string,
  args: string[],
  { env, logFile }: { env: Record<string, string | undefined>; logFile: string },
): SourceProcess {
  mkdirSync(dirname(logFile), { recursive: true });
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, ['-r', '@swc-node/register', entry, ...args], {
    cwd: ROOT,
    env: sourceEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  // 'close' comes after the output pipes are drained; the log is flushed before anyone reads it.
  const exited = once(child, 'close').then(async ([code, signal]) => {
    await new Promise<void>((resolve) => log.end(resolve));
    return (code as number | null) ?? (signal as NodeJS.Signals | null) ?? 'unknown';
  });
  return {
    child,
    pid: child.pid ?? 0,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
  };
}

/** Runs an entry to completion; throws with the log's path when it fails. */
export async function runSourceToEnd(
  entry: string,
  args: string[],
  options: { env: Record<string, string | undefined>; logFile: string },
): Promise<void> {
  const code = await spawnSource(entry, args, options).exited;
  if (code !== 0) throw new Error(`${entry} ${args.join(' ')} failed (${code}); see ${options.logFile}`);
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(process: SourceProcess, graceMs = 10_000): Promise<void> {
  if (!process.running()) return;
  process.child.kill('SIGTERM');
  const timer = setTimeout(() => process.child.kill('SIGKILL'), graceMs);
  await process.exited;
  clearTimeout(timer);
}

/** Peak resident set size (VmHWM) of a live process in KiB, from /proc; undefined once it is gone. */
export function peakRssKib(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, seconds) a live process has used so far, from /proc; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name; ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
