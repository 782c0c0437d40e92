import { ArgumentsHost, Catch, HttpException, Injectable, ServiceUnavailableException } from '@nestjs/common';
import { AdminErrorFilter, AdminErrorReporter } from '@once/mail';
import { DatabaseConnector, isDatabaseUnavailable } from '@once/platform';

/** What a client is told to wait before it asks again while Postgres is away. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The api's global filter: a request that needed Postgres while it is unreachable (not connected
 * since boot, or its connection failed) is answered 503 with `Retry-After`, not 500; everything
 * else as AdminErrorFilter answers it (both reported to the admins, throttled per fingerprint).
 */
@Catch()
@Injectable()
export class DatabaseOutageFilter extends AdminErrorFilter {
  constructor(
    reporter: AdminErrorReporter,
    private readonly database: DatabaseConnector,
  ) {
    super(reporter);
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    // Before the first connection every query fails, some of them (repositories) with errors that
    // do not name the connection; answers a request already had (4xx) stay as they are.
    const outage =
      isDatabaseUnavailable(exception) || (!this.database.connected && !(exception instanceof HttpException));
    if (!outage || host.getType() !== 'http') {
      super.catch(exception, host);
      return;
    }
    host
      .switchToHttp()
      .getResponse<{ setHeader(name: string, value: string): void }>()
      .setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    super.catch(new ServiceUnavailableException('the database is unavailable; try again later'), host);
  }
}
