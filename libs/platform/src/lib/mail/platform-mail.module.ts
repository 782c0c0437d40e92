import { DynamicModule, Module } from '@nestjs/common';
import { MailModule } from '@once/mail';
import type Redis from 'ioredis';
import type { AwsEnv, BaseEnv, MailEnv, RedisEnv } from '../config/config.schemas';
import { REDIS_CLIENT } from '../redis/redis.module';
import { awsClientConfig } from '../sqs/sqs-client.factory';

type MailConfig = BaseEnv & AwsEnv & RedisEnv & MailEnv & Record<string, unknown>;

// Config values that must never appear in an admin error mail, wherever they show up.
const SECRET_KEYS = ['AWS_SECRET_ACCESS_KEY', 'ADMIN_TOKENS', 'TRACKING_SECRETS'] as const;

function secretValues(config: MailConfig): string[] {
  const values = SECRET_KEYS.flatMap((key) => {
    const value = config[key];
    return Array.isArray(value) ? value.map(String) : typeof value === 'string' ? [value] : [];
  });
  for (const key of ['DATABASE_URL', 'REDIS_URL']) {
    const url = config[key];
    if (typeof url === 'string') {
      const password = new URL(url).password;
      if (password) values.push(decodeURIComponent(password));
    }
  }
  return values;
}

/** The mail lib (ledger, SES transport, admin error reports) configured from an app's validated env. */
@Module({})
export class PlatformMailModule {
  static forRoot(app: string, config: MailConfig): DynamicModule {
    return {
      module: PlatformMailModule,
      imports: [
        MailModule.forRootAsync({
          inject: [REDIS_CLIENT],
          useFactory: (redis: unknown) => ({
            ses: { ...awsClientConfig(config, config.SES_ENDPOINT) },
            redis: redis as Redis,
            redisKeyPrefix: `${config.REDIS_KEY_PREFIX}mail:`,
            defaultFrom: config.MAIL_FROM,
            rateLimit: {
              maxSendRate: config.MAIL_MAX_SEND_RATE,
              perRecipient: { limit: config.MAIL_PER_RECIPIENT_PER_HOUR, windowMs: 3_600_000 },
            },
            adminErrors:
              config.ADMIN_EMAILS.length > 0
                ? {
                    recipients: config.ADMIN_EMAILS,
                    appName: app,
                    appVersion: config.APP_VERSION,
                    environment: config.NODE_ENV,
                    redact: { secrets: secretValues(config) },
                  }
                : undefined,
          }),
        }),
      ],
    };
  }
}
