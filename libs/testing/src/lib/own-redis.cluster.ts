import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts, spawnRedisServer } from './redis-server.process';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One node of an {@link OwnRedisCluster}, as `new Cluster(nodes)` (ioredis) takes it. */
export interface ClusterNodeAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * A Redis Cluster of the test's own: `masters` redis-server processes (no replicas, no persistence,
 * loopback only) in cluster mode on free ports, slots spread by `redis-cli --cluster create`.
 * A test may kill -9 a node ({@link killNode}) and then tell the others it is gone
 * ({@link forgetNode}: its slots move to a live master, empty). Never the shared Redis on 6379.
 */
export class OwnRedisCluster {
  private readonly children: (ChildProcess | undefined)[] = [];

  private constructor(
    readonly nodes: readonly ClusterNodeAddress[],
    private readonly dir: string,
  ) {}

  /** Starts the nodes, creates the cluster and waits until every node reports `cluster_state:ok`. */
  /** The running node processes (for a harness that kills every child on exit). */
  get processes(): ChildProcess[] {
    return this.children.filter((child): child is ChildProcess => child !== undefined);
  }

  static async start(masters = 3, timeoutMs = 30_000): Promise<OwnRedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'own-redis-cluster-'));
    const ports = await freePorts(masters);
    const cluster = new OwnRedisCluster(
      ports.map((port) => ({ host: '127.0.0.1', port })),
      dir,
    );
    try {
      await Promise.all(ports.map((port, i) => cluster.spawn(i, port)));
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...ports.map((port) => `127.0.0.1:${port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { timeout: timeoutMs },
      );
      await cluster.waitUntilOk(cluster.nodes, timeoutMs);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** The addresses of the nodes still running. */
  get liveNodes(): ClusterNodeAddress[] {
    return this.nodes.filter((_, i) => this.children[i]);
  }

  /** One Redis command on node `i`, through redis-cli (raw reply text). */
  async command(i: number, ...args: string[]): Promise<string> {
    const node = this.nodes[i];
    if (!node) throw new Error(`no node ${i}`);
    const { stdout } = await run('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], {
      timeout: 5000,
    });
    return stdout.trim();
  }

  /** kill -9 node `i`: it dies at once with its keys; the others keep serving their slots. */
  async killNode(i: number): Promise<void> {
    const child = this.children[i];
    if (!child) return;
    this.children[i] = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Tells the live nodes that the killed node `i` is gone (CLUSTER FORGET) and gives its slots to
   * the first live node, then waits for `cluster_state:ok` everywhere (the records there are lost).
   */
  async forgetNode(i: number, timeoutMs = 15_000): Promise<void> {
    if (this.children[i]) throw new Error(`node ${i} is still running: killNode(${i}) first`);
    const live = this.nodes.map((_, j) => j).filter((j) => this.children[j]);
    const [heir] = live;
    if (heir === undefined) throw new Error('no live node left');
    const id = await this.nodeIdOf(heir, i);
    const slots = await this.slotRangesOf(heir, id);
    for (const j of live) await this.command(j, 'CLUSTER', 'FORGET', id);
    for (const [from, to] of slots)
      await this.command(heir, 'CLUSTER', 'ADDSLOTSRANGE', String(from), String(to));
    await this.command(heir, 'CLUSTER', 'BUMPEPOCH');
    await this.waitUntilOk(this.liveNodes, timeoutMs);
  }

  /** Kills every node and removes the temp dir. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.killNode(i)));
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The id node `viewer` knows node `i` by (from CLUSTER NODES). */
  private async nodeIdOf(viewer: number, i: number): Promise<string> {
    const node = this.nodes[i] as ClusterNodeAddress;
    const line = (await this.command(viewer, 'CLUSTER', 'NODES'))
      .split('\n')
      .find((row) => row.split(' ')[1]?.startsWith(`${node.host}:${node.port}@`));
    const id = line?.split(' ')[0];
    if (!id) throw new Error(`node ${i} (${node.port}) unknown to node ${viewer}`);
    return id;
  }

  private async slotRangesOf(viewer: number, id: string): Promise<[number, number][]> {
    const line = (await this.command(viewer, 'CLUSTER', 'NODES'))
      .split('\n')
      .find((row) => row.startsWith(id));
    return (line?.split(' ').slice(8) ?? [])
      .filter((field) => /^\d+(-\d+)?$/.test(field))
      .map((field) => {
        const [from, to = from] = field.split('-').map(Number) as [number, number?];
        return [from, to as number];
      });
  }

  private async waitUntilOk(nodes: readonly ClusterNodeAddress[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        nodes.map(async (node) => {
          const i = this.nodes.indexOf(node);
          const info = await this.command(i, 'CLUSTER', 'INFO').catch((error: Error) => error.message);
          return /cluster_state:ok/.test(info) ? undefined : `${node.port}: ${info.split('\n')[0]}`;
        }),
      );
      const notOk = states.filter((state) => state !== undefined);
      if (notOk.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`redis cluster not ok within ${timeoutMs} ms: ${notOk.join('; ')}`);
      await sleep(100);
    }
  }

  private async spawn(i: number, port: number): Promise<void> {
    this.children[i] = await spawnRedisServer(
      port,
      [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        '--cluster-require-full-coverage',
        'yes',
        '--dir',
        this.dir,
      ],
      'redis-server (cluster node)',
    );
  }
}
