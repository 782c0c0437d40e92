import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyListener, SqsFaultProxy } from './fault.proxy';
import { peakRssKib, SourceProcess, spawnSource, stopProcess } from './source.process';

/** The first line of a crash in a worker's log: an uncaught error's name and message. */
function crashCause(logFile: string): string | undefined {
  try {
    const lines = readFileSync(logFile, 'utf8').split('\n');
    return lines
      .find((line) => /^[A-Z]\w*(Error|Exception)\b.*:/.test(line.trim()))
      ?.trim()
      .slice(0, 200);
  } catch {
    return undefined;
  }
}

/** A proxy that can give each worker a listener of its own (the fault proxies). */
export interface LabelledEndpoint {
  listen(label: string): Promise<ProxyListener>;
}

export interface FleetOptions {
  /** Environment shared by every worker (database, Redis, AWS credentials, queues, log level…). */
  env: Record<string, string>;
  /** Every worker's SQS calls go through this proxy, which also tells when its consumers poll. */
  sqs: SqsFaultProxy;
  /** Where each worker's SES calls go: a fault proxy, or a fixed endpoint. */
  ses: LabelledEndpoint | string;
  /** Queues every worker must be polling before it counts as up. */
  queues: string[];
  logDir: string;
  bootTimeoutMs?: number;
}

export interface WorkerProcess {
  label: string;
  pid: number;
  logFile: string;
  process: SourceProcess;
  /** Peak RSS (KiB) last sampled from /proc. */
  peakRssKib?: number;
  fate: 'running' | 'killed' | 'stopped' | 'crashed';
  crashCause?: string;
}

export interface FleetEvents {
  /** A worker exited without being told to (not a SIGKILL of ours, not a stop). */
  onCrash?: (worker: WorkerProcess, code: number | string) => void;
}

/**
 * Worker processes (`apps/worker/src/main.ts` from source), each behind its own proxy listeners,
 * started, SIGKILLed and replaced on demand.
 */
export class WorkerFleet {
  readonly workers: WorkerProcess[] = [];
  private readonly listeners: ProxyListener[] = [];
  private sequence = 0;
  private stopping = false;

  constructor(
    private readonly options: FleetOptions,
    private readonly events: FleetEvents = {},
  ) {}

  live(): WorkerProcess[] {
    return this.workers.filter((worker) => worker.fate === 'running');
  }

  /** Starts `count` workers and waits until every one answers /health. */
  async start(count: number): Promise<WorkerProcess[]> {
    const started = await Promise.all(Array.from({ length: count }, () => this.spawn()));
    await Promise.all(started.map((worker) => this.waitReady(worker)));
    return started;
  }

  /** SIGKILLs a worker: no shutdown hook runs, in-flight messages stay invisible until their timeout. */
  kill(label: string): WorkerProcess | undefined {
    const worker = this.workers.find((candidate) => candidate.label === label);
    if (!worker || worker.fate !== 'running') return undefined;
    worker.peakRssKib = peakRssKib(worker.pid) ?? worker.peakRssKib;
    worker.fate = 'killed';
    worker.process.child.kill('SIGKILL');
    return worker;
  }

  /** Starts one more worker (a replacement) and waits until it is healthy. */
  async replace(): Promise<WorkerProcess> {
    const [worker] = await this.start(1);
    return worker;
  }

  sampleRss(): void {
    for (const worker of this.live()) worker.peakRssKib = peakRssKib(worker.pid) ?? worker.peakRssKib;
  }

  /** SIGTERM to every live worker (graceful drain), SIGKILL after `graceMs`; closes the listeners. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.sampleRss();
    await Promise.all(
      this.live().map(async (worker) => {
        worker.fate = 'stopped';
        await stopProcess(worker.process, graceMs);
      }),
    );
    await Promise.all(this.listeners.map((listener) => listener.close()));
  }

  /** Synchronous last resort (process exit): SIGKILL whatever still runs. */
  killAll(): void {
    this.stopping = true;
    for (const worker of this.workers) if (worker.process.running()) worker.process.child.kill('SIGKILL');
  }

  private async endpoint(target: LabelledEndpoint | string, label: string): Promise<string> {
    if (typeof target === 'string') return target;
    const listener = await target.listen(label);
    this.listeners.push(listener);
    return listener.endpoint;
  }

  private async spawn(): Promise<WorkerProcess> {
    const label = `w${++this.sequence}`;
    const [sqs, ses] = await Promise.all([
      this.endpoint(this.options.sqs, label),
      this.endpoint(this.options.ses, label),
    ]);
    const logFile = join(this.options.logDir, `worker-${label}.log`);
    const process = spawnSource('apps/worker/src/main.ts', [], {
      env: {
        ...this.options.env,
        SQS_ENDPOINT: sqs,
        SES_ENDPOINT: ses,
        OPS_PORT: '0',
      },
      logFile,
    });
    const worker: WorkerProcess = { label, pid: process.pid, logFile, process, fate: 'running' };
    this.workers.push(worker);
    void process.exited.then((code) => {
      if (worker.fate !== 'running' || this.stopping) return;
      worker.fate = 'crashed';
      worker.crashCause = crashCause(logFile) ?? `exit ${code}, no error in its log`;
      this.events.onCrash?.(worker, code);
    });
    return worker;
  }

  /** Up = polling every queue (the consumers start after Nest's bootstrap: DB, Redis, queue URLs). */
  private async waitReady(worker: WorkerProcess): Promise<void> {
    const timeoutMs = this.options.bootTimeoutMs ?? 120_000;
    const polling = Promise.all(
      this.options.queues.map((queue) => this.options.sqs.polled(worker.label, queue)),
    );
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      polling.then(() => 'up' as const),
      worker.process.exited.then((code) => `exited (${code}) during boot` as const),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`not polling after ${timeoutMs} ms`), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'up') throw new Error(`worker ${worker.label} ${outcome}; see ${worker.logFile}`);
  }
}
