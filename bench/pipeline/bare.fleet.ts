import { join } from 'node:path';
import type { ProxyListener, SesFaultProxy, SqsFaultProxy } from '../../tools/chaos/fault.proxy';
import { peakRssKib, SourceProcess, spawnSource, stopProcess } from '../../tools/chaos/source.process';

/** One bare consumer process (bench/pipeline/bare.consumer.ts). */
export interface BareProcess {
  label: string;
  pid: number;
  logFile: string;
  process: SourceProcess;
  peakRssKib?: number;
}

/**
 * Bare consumer processes, each behind its own listeners of the bench's SQS and SES proxies (as
 * WorkerFleet gives each worker), up once each polls the email queue.
 */
export class BareFleet {
  readonly workers: BareProcess[] = [];
  private readonly listeners: ProxyListener[] = [];

  constructor(
    private readonly options: {
      env: Record<string, string>;
      sqs: SqsFaultProxy;
      ses: SesFaultProxy;
      emailQueue: string;
      logDir: string;
      bootTimeoutMs?: number;
    },
  ) {}

  async start(count: number): Promise<void> {
    const started = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const label = `b${i + 1}`;
        const [sqs, ses] = await Promise.all([
          this.options.sqs.listen(label),
          this.options.ses.listen(label),
        ]);
        this.listeners.push(sqs, ses);
        const logFile = join(this.options.logDir, `bare-${label}.log`);
        const process = spawnSource('bench/pipeline/bare.consumer.ts', [], {
          env: { ...this.options.env, SQS_ENDPOINT: sqs.endpoint, SES_ENDPOINT: ses.endpoint },
          logFile,
        });
        const worker: BareProcess = { label, pid: process.pid, logFile, process };
        this.workers.push(worker);
        return worker;
      }),
    );
    await Promise.all(started.map((worker) => this.waitReady(worker)));
  }

  sampleRss(): void {
    for (const worker of this.workers) worker.peakRssKib = peakRssKib(worker.pid) ?? worker.peakRssKib;
  }

  async stop(graceMs = 5000): Promise<void> {
    this.sampleRss();
    await Promise.all(this.workers.map((worker) => stopProcess(worker.process, graceMs)));
    await Promise.all(this.listeners.map((listener) => listener.close()));
  }

  private async waitReady(worker: BareProcess): Promise<void> {
    const timeoutMs = this.options.bootTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      this.options.sqs.polled(worker.label, this.options.emailQueue).then(() => 'up' as const),
      worker.process.exited.then((code) => `exited (${code}) during boot`),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`not polling after ${timeoutMs} ms`), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome !== 'up') throw new Error(`bare consumer ${worker.label} ${outcome}; see ${worker.logFile}`);
  }
}
