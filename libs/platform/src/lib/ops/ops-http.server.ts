import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Registry } from 'prom-client';
import { HealthService } from './health.service';
import { METRICS_REGISTRY, OPS_OPTIONS, OpsOptions } from './ops.options';

/** `/health` and `/metrics` for apps without an HTTP server of their own (worker, scheduler). */
@Injectable()
export class OpsHttpServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OpsHttpServer.name);
  private server?: Server;

  constructor(
    private readonly health: HealthService,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
    @Inject(OPS_OPTIONS) private readonly options: OpsOptions,
  ) {}

  /** The bound port (useful with port 0), once listening. */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.port === undefined) return;
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const reply = (status: number, type: string, body: string) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (path === '/health') {
        this.health.check().then(
          (result) => reply(200, 'application/json', JSON.stringify(result)),
          (error: { getResponse?: () => unknown }) =>
            reply(503, 'application/json', JSON.stringify(error.getResponse?.() ?? { status: 'error' })),
        );
      } else if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => reply(200, this.registry.contentType, text),
          () => reply(500, 'text/plain', 'metrics unavailable'),
        );
      } else {
        reply(404, 'application/json', JSON.stringify({ statusCode: 404, message: 'Not Found' }));
      }
    });
    await new Promise<void>((resolve) => this.server?.listen(this.options.port, resolve));
    this.logger.log({ msg: 'ops endpoints listening', port: this.port });
  }

  async onApplicationShutdown(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
