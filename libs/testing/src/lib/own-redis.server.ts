import type { ChildProcess } from 'node:child_process';
import { freePorts, spawnRedisServer } from './redis-server.process';

/**
 * A redis-server of the test's own on a free loopback port, without persistence, that the test
 * may SIGKILL and start again on the same port (a restart that loses every key). Never the shared
 * Redis on 6379.
 */
export class OwnRedisServer {
  private child?: ChildProcess;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OwnRedisServer> {
    for (let attempt = 1; ; attempt++) {
      const server = new OwnRedisServer(((await freePorts(1)) as [number])[0]);
      try {
        await server.spawn();
        return server;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
  }

  /** kill -9: the process dies at once, with every key (nothing is saved). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  /** Starts it again on the same port, empty. */
  async restart(): Promise<void> {
    await this.kill();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawn();
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async stop(): Promise<void> {
    await this.kill();
  }

  private async spawn(): Promise<void> {
    this.child = await spawnRedisServer(this.port, ['--protected-mode', 'no']);
  }
}
