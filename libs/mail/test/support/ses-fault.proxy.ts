import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { forwardableHeaders, forwardRequest, readBody, type UpstreamResponse } from '@once/testing';

/**
 * What the proxy does with one SES request:
 * - `pass`: forwards it and relays the answer;
 * - `hold`: forwards it (the emulator stores the mail), then holds the answer for `ms` (or until
 *   {@link SesFaultProxy.releaseAll}) before relaying it; with `phase: 'body'` the status line,
 *   headers and half the body go out at once and only the rest is held;
 * - `throttle`: answers SES v2's throttling error (`TooManyRequestsException`, HTTP 429 or 400)
 *   without forwarding: SES refused it;
 * - `fail`: answers `status` (5xx); with `forward` the emulator got (and stored) it first, as when
 *   SES accepted the mail and then failed to answer.
 */
export type SesFaultAction =
  | { readonly kind: 'pass' }
  | { readonly kind: 'hold'; readonly ms: number; readonly phase?: 'headers' | 'body' }
  | { readonly kind: 'throttle'; readonly status: 429 | 400 }
  | { readonly kind: 'fail'; readonly status: number; readonly forward: boolean };

/** One SES request as the proxy saw it. */
export interface SesExchange {
  /** The `X-Once-Key` header of a SendEmail, else undefined. */
  readonly key?: string;
  /** `SendEmail`, `GetAccount` or the raw path. */
  readonly operation: string;
  /** 1 for the first request with this key, 2 for the next… */
  readonly nth: number;
  readonly action: SesFaultAction;
  /** Whether the emulator received it. */
  forwarded: boolean;
  /** Status the client was (or would have been) sent. */
  status?: number;
  /** When the client's connection for this request closed or the answer was fully written. */
  closedAt?: number;
  readonly at: number;
}

function describeRequest(req: IncomingMessage, body: Buffer): { key?: string; operation: string } {
  const path = req.url ?? '';
  if (path.startsWith('/v2/email/outbound-emails')) {
    try {
      const input = JSON.parse(body.toString('utf8')) as {
        Content?: { Simple?: { Headers?: Array<{ Name?: string; Value?: string }> } };
      };
      const key = input.Content?.Simple?.Headers?.find(
        (header) => header.Name?.toLowerCase() === 'x-once-key',
      )?.Value;
      return { key, operation: 'SendEmail' };
    } catch {
      return { operation: 'SendEmail' };
    }
  }
  if (path.startsWith('/v2/email/account')) return { operation: 'GetAccount' };
  return { operation: path };
}

/**
 * A real HTTP proxy between the SDK and aws-ses-v2-local that injects SES faults per request and
 * records every exchange, so a test can count what reached the emulator and whether two calls for
 * one key were ever open at once.
 */
export class SesFaultProxy {
  readonly exchanges: SesExchange[] = [];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });
  private readonly upstream: URL;
  private readonly sockets = new Set<Socket>();
  private readonly held = new Set<() => void>();
  private readonly seen = new Map<string, number>();
  private readonly listeners = new Set<(exchange: SesExchange) => void>();
  private server?: Server;

  /** `decide` picks the action for each request (default: pass everything). */
  constructor(
    upstream: string,
    private decide: (request: { key?: string; operation: string; nth: number }) => SesFaultAction = () => ({
      kind: 'pass',
    }),
  ) {
    this.upstream = new URL(upstream);
  }

  setDecider(decide: (request: { key?: string; operation: string; nth: number }) => SesFaultAction): void {
    this.decide = decide;
  }

  async listen(): Promise<string> {
    const server = createServer((req, res) => {
      readBody(req)
        .then(async (body) => {
          const { key, operation } = describeRequest(req, body);
          const counter = key ?? operation;
          const nth = (this.seen.get(counter) ?? 0) + 1;
          this.seen.set(counter, nth);
          const action = this.decide({ key, operation, nth });
          const exchange: SesExchange = { key, operation, nth, action, forwarded: false, at: Date.now() };
          this.exchanges.push(exchange);
          res.on('close', () => (exchange.closedAt ??= Date.now()));
          for (const listener of this.listeners) listener(exchange);

          if (action.kind === 'throttle') {
            exchange.status = action.status;
            this.answerError(
              res,
              action.status,
              'TooManyRequestsException',
              'Maximum sending rate exceeded.',
            );
            return;
          }
          if (action.kind === 'fail' && !action.forward) {
            exchange.status = action.status;
            this.answerError(res, action.status, 'InternalFailure', 'injected: SES failed before sending');
            return;
          }
          const response = await this.forward(req, body);
          exchange.forwarded = true;
          if (action.kind === 'fail') {
            exchange.status = action.status;
            this.answerError(res, action.status, 'InternalFailure', 'injected: SES failed after accepting');
            return;
          }
          exchange.status = response.status;
          const headers = {
            ...forwardableHeaders(response.headers),
            'content-length': String(response.body.length),
          };
          if (action.kind === 'hold') {
            if (action.phase === 'body') {
              const half = Math.floor(response.body.length / 2);
              res.writeHead(response.status, headers);
              res.write(response.body.subarray(0, half));
              await this.hold(action.ms);
              if (!res.destroyed) res.end(response.body.subarray(half));
              return;
            }
            await this.hold(action.ms);
          }
          if (res.destroyed) return;
          res.writeHead(response.status, headers);
          res.end(response.body);
        })
        .catch((error: unknown) => {
          if (res.headersSent || res.destroyed) return;
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`ses fault proxy: ${error instanceof Error ? error.message : String(error)}`);
        });
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Resolves with the first exchange (already seen or future) that matches. */
  next(match: (exchange: SesExchange) => boolean): Promise<SesExchange> {
    const found = this.exchanges.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const listener = (exchange: SesExchange) => {
        if (!match(exchange)) return;
        this.listeners.delete(listener);
        resolve(exchange);
      };
      this.listeners.add(listener);
    });
  }

  /** SendEmail exchanges for `key`, oldest first. */
  sends(key: string): SesExchange[] {
    return this.exchanges.filter((exchange) => exchange.operation === 'SendEmail' && exchange.key === key);
  }

  /**
   * The largest number of SendEmail requests for one key whose client connections were open at the
   * same time (`now` closes the ones still open).
   */
  maxOverlap(key: string): number {
    const now = Date.now();
    const events = this.sends(key).flatMap((exchange) => [
      { at: exchange.at, delta: 1 },
      { at: exchange.closedAt ?? now, delta: -1 },
    ]);
    events.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let open = 0;
    let max = 0;
    for (const event of events) {
      open += event.delta;
      max = Math.max(max, open);
    }
    return max;
  }

  /** Lets every held answer go now. */
  releaseAll(): void {
    for (const release of [...this.held]) release();
  }

  async close(): Promise<void> {
    this.releaseAll();
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.agent.destroy();
  }

  private hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.held.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      this.held.add(release);
    });
  }

  private answerError(res: ServerResponse, status: number, type: string, message: string): void {
    if (res.destroyed) return;
    const body = Buffer.from(JSON.stringify({ message }));
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'x-amzn-errortype': type,
      'x-amzn-requestid': `proxy-${this.exchanges.length}`,
    });
    res.end(body);
  }

  private forward(req: IncomingMessage, body: Buffer): Promise<UpstreamResponse> {
    return forwardRequest(this.upstream, this.agent, req, body);
  }
}
