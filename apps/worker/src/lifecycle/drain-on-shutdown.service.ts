import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, BaseEnv, InFlightTracker } from '@once/platform';

/**
 * SqsService stops polling in onModuleDestroy; this waits for handlers already running before
 * onApplicationShutdown closes Postgres and Redis under them.
 */
@Injectable()
export class DrainOnShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DrainOnShutdown.name);

  constructor(
    private readonly inFlight: InFlightTracker,
    @Inject(APP_CONFIG) private readonly config: BaseEnv,
  ) {}

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    const pending = this.inFlight.size;
    const drained = await this.inFlight.drain(this.config.SHUTDOWN_TIMEOUT_MS);
    this.logger.log({
      msg: drained ? 'drained' : 'drain timed out',
      signal,
      pending,
      left: this.inFlight.size,
    });
  }
}
