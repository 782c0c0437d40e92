import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';

/**
 * One log line when `client` loses its connection and one when it is back. Without an 'error'
 * listener ioredis prints "Unhandled error event" on every reconnect attempt; callers see the
 * failures themselves, so one line per outage is enough.
 */
export function logRedisOutages(client: Redis | Cluster, context: string, what: string): void {
  const logger = new Logger(context);
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ msg: `${what} connection lost; reconnecting`, err: error.message });
  });
  client.on('ready', () => {
    if (down) logger.log({ msg: `${what} connection restored` });
    down = false;
  });
}
