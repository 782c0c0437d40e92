import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { freePort, sleep, until } from './net.util';
import { trackChild } from './source.process';

export type RedisPersistence = 'none' | 'aof';

async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * A redis-server of the run's own on a free port (never the system one), so it can be stopped and
 * started again under the workers. `none`: a restart loses every key, as a cache node without
 * persistence does; `aof`: the append-only file brings the keys back.
 */
export class RedisInstance {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'once-chaos-redis-'));

  private constructor(
    readonly port: number,
    private readonly persistence: RedisPersistence,
  ) {}

  static async start(persistence: RedisPersistence = 'none'): Promise<RedisInstance> {
    const instance = new RedisInstance(await freePort(), persistence);
    await instance.launch();
    return instance;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stops the server (SIGTERM: clean shutdown), waits `downtimeMs`, starts it again on the same port. */
  async restart(downtimeMs: number): Promise<void> {
    await this.halt();
    await sleep(downtimeMs);
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const persistence =
      this.persistence === 'aof'
        ? ['--appendonly', 'yes', '--appendfsync', 'always']
        : ['--appendonly', 'no'];
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...persistence,
        '--dir',
        this.dir,
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    trackChild(child);
    await until(
      `redis-server on port ${this.port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        return ping(this.port);
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  }

  private async halt(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
