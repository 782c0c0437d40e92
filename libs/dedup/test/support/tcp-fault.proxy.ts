import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A fault armed for the next exchange through the proxy:
 * - `drop-request`: the next client bytes are swallowed and the connection is cut (the command never ran);
 * - `drop-reply`: the next client bytes are forwarded, then the connection is cut when the answer
 *   comes back (the command ran, its caller never heard);
 * - `delay-reply`: answers are held for `ms`, then delivered (past the client's timeout);
 * - `delay-request`: the next client bytes are held for `ms`, then forwarded (the command runs
 *   after its caller gave up on it, like a healed partition);
 * - `refuse`: every connection is cut now and new ones are refused for `ms` (a restart).
 */
export type TcpFault =
  | { readonly kind: 'drop-request' }
  | { readonly kind: 'drop-reply' }
  | { readonly kind: 'delay-reply'; readonly ms: number }
  | { readonly kind: 'delay-request'; readonly ms: number }
  | { readonly kind: 'refuse'; readonly ms: number };

interface Pipe {
  readonly client: Socket;
  readonly server: Socket;
}

/** A TCP proxy in front of one server (Redis or Postgres) that injects one armed fault at a time. */
export class TcpFaultProxy {
  private server?: Server;
  private readonly pipes = new Set<Pipe>();
  private armed?: TcpFault;
  private fired = false;
  private refuseUntil = 0;
  private holdUntil = 0;
  private requestHoldUntil = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async listen(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  /** Arms `fault` for the next exchange (replacing any armed one); `refuse` fires at once. */
  arm(fault: TcpFault): void {
    this.armed = fault;
    this.fired = false;
    if (fault.kind === 'refuse') {
      this.fire();
      this.refuseUntil = Date.now() + fault.ms;
      this.cutAll();
    }
  }

  /** Disarms whatever did not fire; returns whether the armed fault fired. */
  disarm(): boolean {
    const fired = this.fired;
    this.armed = undefined;
    this.fired = false;
    return fired;
  }

  /** Cuts every open connection. */
  cutAll(): void {
    for (const pipe of this.pipes) this.cut(pipe);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.cutAll();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private fire(): TcpFault | undefined {
    const fault = this.armed;
    if (!fault || this.fired) return undefined;
    this.fired = true;
    return fault;
  }

  private accept(client: Socket): void {
    if (Date.now() < this.refuseUntil) {
      client.destroy();
      return;
    }
    const server = createConnection({ host: this.upstreamHost, port: this.upstreamPort });
    const pipe: Pipe = { client, server };
    this.pipes.add(pipe);
    let replyFault: 'drop' | undefined;
    client.on('data', (chunk: Buffer) => {
      const fault = this.armed && !this.fired ? this.armed : undefined;
      if (fault?.kind === 'drop-request') {
        this.fire();
        this.cut(pipe);
        return;
      }
      if (fault?.kind === 'drop-reply') {
        this.fire();
        replyFault = 'drop';
      }
      if (fault?.kind === 'delay-reply') {
        this.fire();
        this.holdUntil = Math.max(this.holdUntil, Date.now() + fault.ms);
      }
      if (fault?.kind === 'delay-request') {
        this.fire();
        this.requestHoldUntil = Math.max(this.requestHoldUntil, Date.now() + fault.ms);
      }
      this.deliver(client, server, chunk, this.requestHoldUntil);
    });
    server.on('data', (chunk: Buffer) => {
      if (replyFault === 'drop') {
        this.cut(pipe);
        return;
      }
      this.deliver(server, client, chunk, this.holdUntil);
    });
    const close = () => this.cut(pipe);
    client.on('error', close).on('close', close);
    server.on('error', close).on('close', close);
  }

  /** Writes `chunk` from `from` to `to`, at once or, while held, when `holdUntil` has passed. */
  private deliver(from: Socket, to: Socket, chunk: Buffer, holdUntil: number): void {
    const wait = holdUntil - Date.now();
    if (wait <= 0) {
      to.write(chunk);
      return;
    }
    // Held bytes keep their order: the source is paused until the hold is over.
    from.pause();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!to.destroyed) to.write(chunk);
      from.resume();
    }, wait);
    this.timers.add(timer);
  }

  private cut(pipe: Pipe): void {
    this.pipes.delete(pipe);
    pipe.client.destroy();
    pipe.server.destroy();
  }
}
