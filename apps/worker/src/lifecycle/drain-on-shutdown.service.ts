import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { SqsService } from '@ssut/nestjs-sqs';
import { APP_CONFIG, BaseEnv, InFlightTracker } from '@once/platform';

const POLL_MS = 50;

/**
 * SqsService stops the consumers in onModuleDestroy; this waits, before onApplicationShutdown
 * closes Postgres, Redis and the SQS client, for the handlers already running and then for each
 * consumer's current poll cycle to end (the last receive, the @Idempotent claim and completion
 * around the handler, and the DeleteMessage), at most SHUTDOWN_TIMEOUT_MS in all.
 */
@Injectable()
export class DrainOnShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DrainOnShutdown.name);

  constructor(
    private readonly inFlight: InFlightTracker,
    private readonly sqs: SqsService,
    @Inject(APP_CONFIG) private readonly config: BaseEnv,
  ) {}

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    const deadline = Date.now() + this.config.SHUTDOWN_TIMEOUT_MS;
    const pending = this.inFlight.size;
    const drained = await this.inFlight.drain(this.config.SHUTDOWN_TIMEOUT_MS);
    while (this.polling().length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const stillPolling = this.polling();
    this.logger.log({
      msg: drained && stillPolling.length === 0 ? 'drained' : 'drain timed out',
      signal,
      pending,
      left: this.inFlight.size,
      stillPolling,
    });
  }

  private polling(): string[] {
    return [...this.sqs.consumers.entries()]
      .filter(([, consumer]) => consumer.instance.status.isPolling)
      .map(([name]) => name);
  }
}
