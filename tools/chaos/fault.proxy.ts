import { Agent, createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { forwardableHeaders, forwardRequest, readBody, type UpstreamResponse } from '@once/testing';
import type { SeededRandom } from './seeded.random';
import type { MessageTrail } from './message.trail';
import { sleep } from './net.util';

/** One port of a proxy, given to one worker, so every request is attributed to the worker that made it. */
export interface ProxyListener {
  label: string;
  endpoint: string;
  close(): Promise<void>;
}

interface Exchange {
  label: string;
  req: IncomingMessage;
  res: ServerResponse;
  body: Buffer;
}

/** A buffering HTTP proxy in front of one emulator, with any number of labelled listeners. */
abstract class LabelledProxy {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });
  private readonly servers = new Set<Server>();
  private readonly upstream: URL;

  protected constructor(upstream: string) {
    this.upstream = new URL(upstream);
  }

  async listen(label: string): Promise<ProxyListener> {
    const sockets = new Set<Socket>();
    const server = createServer((req, res) => {
      readBody(req)
        .then((body) => this.handle({ label, req, res, body }))
        .catch((error: unknown) => {
          if (res.headersSent || res.destroyed) return;
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`chaos proxy: upstream failed: ${error instanceof Error ? error.message : String(error)}`);
        });
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.servers.add(server);
    const { port } = server.address() as AddressInfo;
    return {
      label,
      endpoint: `http://127.0.0.1:${port}`,
      close: async () => {
        this.servers.delete(server);
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.servers].map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
    this.servers.clear();
    this.agent.destroy();
  }

  protected abstract handle(exchange: Exchange): Promise<void>;

  protected forward({ req, body }: Exchange): Promise<UpstreamResponse> {
    return forwardRequest(this.upstream, this.agent, req, body);
  }

  protected reply({ res }: Exchange, response: UpstreamResponse): void {
    if (res.destroyed) return;
    res.writeHead(response.status, {
      ...forwardableHeaders(response.headers),
      'content-length': String(response.body.length),
    });
    res.end(response.body);
  }

  /** Drops the connection without an answer: what the client of a process that just died would see. */
  protected abandon({ req, res }: Exchange): void {
    res.destroy();
    req.socket.destroy();
  }

  protected async passThrough(exchange: Exchange): Promise<UpstreamResponse> {
    const response = await this.forward(exchange);
    this.reply(exchange, response);
    return response;
  }
}

export type KillHook = (label: string) => void;

export interface SqsFaultStats {
  deleteCalls: number;
  /** 500 answers given to DeleteMessage/DeleteMessageBatch (SDK retries of one doomed delete included). */
  deleteFaultAnswers: number;
  /** Receipt handles whose delete was made to fail (each is a message that will be delivered again). */
  deletesFailed: number;
  /** Fan-out SendMessage(Batch) calls to the email queue that SQS accepted. */
  fanoutBatches: number;
  fanoutMessages: number;
}

/**
 * In front of fauxqs. Fails a share of DeleteMessage/DeleteMessageBatch (AWS JSON protocol,
 * `X-Amz-Target: AmazonSQS.DeleteMessage[Batch]`) with 500 InternalError, the decision sticky per
 * receipt handle so the SDK's own retries fail too and the message really stays on the queue;
 * taps the bodies the fan-out enqueues on the email queue; can kill a worker right after SQS
 * accepted one of its fan-out batches and before it saw the answer.
 */
export class SqsFaultProxy extends LabelledProxy {
  readonly stats: SqsFaultStats = {
    deleteCalls: 0,
    deleteFaultAnswers: 0,
    deletesFailed: 0,
    fanoutBatches: 0,
    fanoutMessages: 0,
  };
  private readonly deleteDecisions = new Map<string, boolean>();
  private readonly tapListeners: Array<(bodies: string[]) => void> = [];
  private readonly pollers = new Set<string>();
  /** eventIds of the email messages each worker received. */
  private readonly received = new Map<string, Set<string>>();
  private readonly pollWaiters = new Map<string, Array<() => void>>();
  private fanoutKill?: { afterBatches: number; kill: KillHook; resolve: (label: string) => void };

  constructor(
    upstream: string,
    private readonly options: {
      emailQueue: string;
      deleteFailureShare: number;
      random: SeededRandom;
      /** Records every message's sends, receives, visibility changes and deletes. */
      trail?: MessageTrail;
    },
  ) {
    super(upstream);
  }

  /** Called with the bodies of every fan-out batch SQS accepted. */
  onFanout(listener: (bodies: string[]) => void): void {
    this.tapListeners.push(listener);
  }

  /**
   * Kills the worker that sends the fan-out batch after `afterBatches` more accepted ones, once SQS
   * has accepted it and before the worker sees the answer. Resolves with the victim's label.
   */
  armFanoutKill(afterBatches: number, kill: KillHook): Promise<string> {
    return new Promise((resolve) => {
      this.fanoutKill = { afterBatches: this.stats.fanoutBatches + afterBatches, kill, resolve };
    });
  }

  /**
   * The eventIds of every email message `label` received: after a kill, any of them may be left
   * undecided (a ledger row stamped for SES, the call cut anywhere between the stamp and the answer).
   */
  receivedKeys(label: string): string[] {
    return [...(this.received.get(label) ?? [])];
  }

  /** Resolves once the worker behind `label` polls `queue` (its consumer is running). */
  polled(label: string, queue: string): Promise<void> {
    const key = `${label} ${queue}`;
    if (this.pollers.has(key)) return Promise.resolve();
    return new Promise((resolve) => {
      this.pollWaiters.set(key, [...(this.pollWaiters.get(key) ?? []), resolve]);
    });
  }

  protected async handle(exchange: Exchange): Promise<void> {
    const target = String(exchange.req.headers['x-amz-target'] ?? '');
    if (target === 'AmazonSQS.ReceiveMessage') {
      const queue = this.notePoll(exchange);
      return this.tapReceive(exchange, queue);
    }
    if (
      target === 'AmazonSQS.ChangeMessageVisibility' ||
      target === 'AmazonSQS.ChangeMessageVisibilityBatch'
    ) {
      return this.tapVisibility(exchange, target);
    }
    if (target === 'AmazonSQS.DeleteMessage' || target === 'AmazonSQS.DeleteMessageBatch') {
      return this.maybeFailDelete(exchange, target);
    }
    if (target === 'AmazonSQS.SendMessageBatch' || target === 'AmazonSQS.SendMessage') {
      return this.tapSend(exchange, target);
    }
    await this.passThrough(exchange);
  }

  /** Returns the polled queue's name. */
  private notePoll({ label, body }: Exchange): string {
    const queueUrl = (JSON.parse(body.toString('utf8')) as { QueueUrl?: string }).QueueUrl ?? '';
    const queue = queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
    const key = `${label} ${queue}`;
    if (this.pollers.has(key)) return queue;
    this.pollers.add(key);
    for (const resolve of this.pollWaiters.get(key) ?? []) resolve();
    this.pollWaiters.delete(key);
    return queue;
  }

  private async tapReceive(exchange: Exchange, queue: string): Promise<void> {
    const response = await this.passThrough(exchange);
    if (response.status !== 200) return;
    const output = JSON.parse(response.body.toString('utf8')) as {
      Messages?: Array<{
        MessageId?: string;
        ReceiptHandle?: string;
        Body?: string;
        Attributes?: Record<string, string>;
      }>;
    };
    for (const message of output.Messages ?? []) this.options.trail?.received(queue, message, exchange.label);
    if (queue !== this.options.emailQueue) return;
    const keys = this.received.get(exchange.label) ?? new Set<string>();
    this.received.set(exchange.label, keys);
    try {
      for (const message of output.Messages ?? []) {
        const eventId = (JSON.parse(message.Body ?? '') as { eventId?: unknown }).eventId;
        if (typeof eventId === 'string') keys.add(eventId);
      }
    } catch {
      // Malformed bodies are injected on purpose; they have no key to remember.
    }
  }

  private async maybeFailDelete(exchange: Exchange, target: string): Promise<void> {
    this.stats.deleteCalls++;
    const input = JSON.parse(exchange.body.toString('utf8')) as {
      ReceiptHandle?: string;
      Entries?: Array<{ Id?: string; ReceiptHandle?: string }>;
    };
    const handles =
      target === 'AmazonSQS.DeleteMessage'
        ? [input.ReceiptHandle ?? '']
        : (input.Entries ?? []).map((entry) => entry.ReceiptHandle ?? '');
    const key = [...handles].sort().join(' ');
    let fail = this.deleteDecisions.get(key);
    if (fail === undefined) {
      fail = this.options.random.chance(this.options.deleteFailureShare);
      this.deleteDecisions.set(key, fail);
      if (fail) this.stats.deletesFailed += handles.length;
    }
    if (!fail) {
      const response = await this.passThrough(exchange);
      const failedIds = new Set<string>();
      if (response.status === 200 && target === 'AmazonSQS.DeleteMessageBatch') {
        const output = JSON.parse(response.body.toString('utf8')) as { Failed?: Array<{ Id?: string }> };
        for (const entry of output.Failed ?? []) failedIds.add(entry.Id ?? '');
      }
      const ids =
        target === 'AmazonSQS.DeleteMessage' ? [''] : (input.Entries ?? []).map((entry) => entry.Id ?? '');
      handles.forEach((handle, i) =>
        this.options.trail?.deleted(handle, exchange.label, response.status !== 200 || failedIds.has(ids[i])),
      );
      return;
    }
    for (const handle of handles) this.options.trail?.deleted(handle, exchange.label, true);
    this.stats.deleteFaultAnswers++;
    const body = Buffer.from(
      JSON.stringify({ __type: 'InternalError', message: 'chaos: injected DeleteMessage failure' }),
    );
    exchange.res.writeHead(500, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': String(body.length),
      'x-amzn-requestid': `chaos-${this.stats.deleteFaultAnswers}`,
    });
    exchange.res.end(body);
  }

  private async tapVisibility(exchange: Exchange, target: string): Promise<void> {
    const input = JSON.parse(exchange.body.toString('utf8')) as {
      ReceiptHandle?: string;
      VisibilityTimeout?: number;
      Entries?: Array<{ Id?: string; ReceiptHandle?: string; VisibilityTimeout?: number }>;
    };
    const response = await this.passThrough(exchange);
    const trail = this.options.trail;
    if (!trail) return;
    if (target === 'AmazonSQS.ChangeMessageVisibility') {
      trail.visibility(
        input.ReceiptHandle ?? '',
        input.VisibilityTimeout ?? 0,
        'single',
        exchange.label,
        response.status !== 200,
      );
      return;
    }
    const failed = new Set<string>();
    if (response.status === 200) {
      const output = JSON.parse(response.body.toString('utf8')) as { Failed?: Array<{ Id?: string }> };
      for (const entry of output.Failed ?? []) failed.add(entry.Id ?? '');
    }
    for (const entry of input.Entries ?? [])
      trail.visibility(
        entry.ReceiptHandle ?? '',
        entry.VisibilityTimeout ?? 0,
        'batch',
        exchange.label,
        response.status !== 200 || failed.has(entry.Id ?? ''),
      );
  }

  private noteSends(
    exchange: Exchange,
    target: string,
    input: {
      QueueUrl?: string;
      MessageBody?: string;
      DelaySeconds?: number;
      Entries?: Array<{ Id: string; MessageBody: string; DelaySeconds?: number }>;
    },
    response: UpstreamResponse,
  ): void {
    const trail = this.options.trail;
    if (!trail || response.status !== 200) return;
    const queueUrl = input.QueueUrl ?? '';
    const queue = queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
    try {
      if (target === 'AmazonSQS.SendMessage') {
        const output = JSON.parse(response.body.toString('utf8')) as { MessageId?: string };
        trail.sent(queue, output.MessageId, input.MessageBody, exchange.label, input.DelaySeconds);
        return;
      }
      const output = JSON.parse(response.body.toString('utf8')) as {
        Successful?: Array<{ Id: string; MessageId?: string }>;
      };
      const entries = new Map((input.Entries ?? []).map((entry) => [entry.Id, entry]));
      for (const ok of output.Successful ?? []) {
        const entry = entries.get(ok.Id);
        trail.sent(queue, ok.MessageId, entry?.MessageBody, exchange.label, entry?.DelaySeconds);
      }
    } catch {
      // An answer that is not JSON is the emulator's business; the trail just misses it.
    }
  }

  private async tapSend(exchange: Exchange, target: string): Promise<void> {
    const input = JSON.parse(exchange.body.toString('utf8')) as {
      QueueUrl?: string;
      MessageBody?: string;
      DelaySeconds?: number;
      Entries?: Array<{ Id: string; MessageBody: string; DelaySeconds?: number }>;
    };
    const toEmailQueue = (input.QueueUrl ?? '').endsWith(`/${this.options.emailQueue}`);
    const response = await this.forward(exchange);
    this.noteSends(exchange, target, input, response);
    if (toEmailQueue && response.status === 200) {
      // A delayed send is a worker re-sending a message it had to put off, not the fan-out.
      let bodies: string[];
      if (target === 'AmazonSQS.SendMessage') {
        bodies = input.DelaySeconds ? [] : [input.MessageBody ?? ''];
      } else {
        const output = JSON.parse(response.body.toString('utf8')) as { Successful?: Array<{ Id: string }> };
        const ok = new Set((output.Successful ?? []).map((entry) => entry.Id));
        bodies = (input.Entries ?? [])
          .filter((entry) => ok.has(entry.Id) && !entry.DelaySeconds)
          .map((entry) => entry.MessageBody);
      }
      if (bodies.length === 0) {
        this.reply(exchange, response);
        return;
      }
      this.stats.fanoutBatches++;
      this.stats.fanoutMessages += bodies.length;
      for (const listener of this.tapListeners) listener(bodies);
      const kill = this.fanoutKill;
      if (kill && this.stats.fanoutBatches >= kill.afterBatches) {
        this.fanoutKill = undefined;
        kill.kill(exchange.label);
        this.abandon(exchange);
        kill.resolve(exchange.label);
        return;
      }
    }
    this.reply(exchange, response);
  }
}

/** The `X-Once-Key` header of an SES v2 SendEmail request body (the ledger's idempotency key). */
export function onceKeyOf(body: Buffer): string | undefined {
  try {
    const input = JSON.parse(body.toString('utf8')) as {
      Content?: { Simple?: { Headers?: Array<{ Name?: string; Value?: string }> } };
    };
    return input.Content?.Simple?.Headers?.find((header) => header.Name?.toLowerCase() === 'x-once-key')
      ?.Value;
  } catch {
    return undefined;
  }
}

export type SlowSendMode = 'before-forward' | 'after-accept';
export type KillPoint = 'after-accept' | 'before-forward';

export interface SesFaultStats {
  sendRequests: number;
  /** SendEmail calls the SES emulator answered 2xx (emails it stored), whoever got the answer. */
  accepted: number;
  acceptedBy: Record<string, number>;
  slowSends: Record<SlowSendMode, number>;
  /**
   * SendEmail calls the proxy could not forward (the emulator's socket failed; not injected): the
   * worker got a 502 and rightly cannot know whether SES has the email.
   */
  upstreamFailures: { key: string; label: string; error: string }[];
  firstAcceptedAt?: number;
  lastAcceptedAt?: number;
}

/**
 * In front of the SES emulator. Holds a chosen few SendEmail calls for longer than the queue's
 * visibility timeout (half of them before forwarding, half after SES accepted the email), and can
 * kill a worker in the middle of a send: after SES accepted it but before the worker knew, or
 * before it reached SES.
 */
export class SesFaultProxy extends LabelledProxy {
  readonly stats: SesFaultStats = {
    sendRequests: 0,
    accepted: 0,
    acceptedBy: {},
    slowSends: { 'before-forward': 0, 'after-accept': 0 },
    upstreamFailures: [],
  };
  private held = 0;
  /** Keys of the SendEmail calls each worker has open right now (sent, not yet answered). */
  private readonly open = new Map<string, Map<number, string>>();
  private readonly slow = new Map<number, SlowSendMode>();
  private readonly acceptedListeners: Array<(accepted: number) => void> = [];
  private kill?: { point: KillPoint; hook: KillHook; resolve: (label: string) => void };

  constructor(
    upstream: string,
    private readonly options: { slowDelayMs: number } = { slowDelayMs: 0 },
  ) {
    super(upstream);
  }

  /** Makes the SendEmail calls with these ordinals (0-based, in arrival order) slow, alternating the mode. */
  slowDown(ordinals: readonly number[]): void {
    [...ordinals]
      .sort((a, b) => a - b)
      .forEach((ordinal, i) => this.slow.set(ordinal, i % 2 === 0 ? 'after-accept' : 'before-forward'));
  }

  /** SendEmail calls being held or forwarded right now. */
  get pending(): number {
    return this.held;
  }

  /** The idempotency keys of the SendEmail calls `label` has open right now. */
  openKeys(label: string): string[] {
    return [...(this.open.get(label)?.values() ?? [])];
  }

  onAccepted(listener: (accepted: number) => void): void {
    this.acceptedListeners.push(listener);
  }

  /** Kills the worker making the next SendEmail call, at `point`. Resolves with the victim's label. */
  armKill(point: KillPoint, hook: KillHook): Promise<string> {
    return new Promise((resolve) => {
      this.kill = { point, hook, resolve };
    });
  }

  protected async handle(exchange: Exchange): Promise<void> {
    const isSend =
      exchange.req.method === 'POST' && (exchange.req.url ?? '').startsWith('/v2/email/outbound-emails');
    if (!isSend) {
      await this.passThrough(exchange);
      return;
    }
    const ordinal = this.stats.sendRequests++;
    this.held++;
    const open = this.open.get(exchange.label) ?? new Map<number, string>();
    this.open.set(exchange.label, open);
    const key = onceKeyOf(exchange.body) ?? `(no X-Once-Key, call ${ordinal})`;
    open.set(ordinal, key);
    try {
      const kill = this.kill;
      if (kill) {
        this.kill = undefined;
        this.postponeSlow(ordinal);
        if (kill.point === 'before-forward') {
          kill.hook(exchange.label);
          this.abandon(exchange);
          kill.resolve(exchange.label);
          return;
        }
        const response = await this.forward(exchange);
        this.record(exchange.label, response);
        kill.hook(exchange.label);
        this.abandon(exchange);
        kill.resolve(exchange.label);
        return;
      }
      const mode = this.slow.get(ordinal);
      if (mode) this.stats.slowSends[mode]++;
      if (mode === 'before-forward') await sleep(this.options.slowDelayMs);
      const response = await this.forward(exchange).catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.stats.upstreamFailures.push({ key, label: exchange.label, error: message });
        throw error;
      });
      this.record(exchange.label, response);
      if (mode === 'after-accept') await sleep(this.options.slowDelayMs);
      this.reply(exchange, response);
    } finally {
      this.held--;
      open.delete(ordinal);
    }
  }

  /** A kill took this call: the slow send planned for it moves to the next free ordinal. */
  private postponeSlow(ordinal: number): void {
    const mode = this.slow.get(ordinal);
    if (!mode) return;
    this.slow.delete(ordinal);
    let next = ordinal + 1;
    while (this.slow.has(next)) next++;
    this.slow.set(next, mode);
  }

  private record(label: string, response: UpstreamResponse): void {
    if (response.status < 200 || response.status >= 300) return;
    const now = Date.now();
    this.stats.accepted++;
    this.stats.acceptedBy[label] = (this.stats.acceptedBy[label] ?? 0) + 1;
    this.stats.firstAcceptedAt ??= now;
    this.stats.lastAcceptedAt = now;
    for (const listener of this.acceptedListeners) listener(this.stats.accepted);
  }
}
