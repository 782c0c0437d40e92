import { DynamicModule, Logger, Module } from '@nestjs/common';
import { MailModule } from '@once/mail';
import type Redis from 'ioredis';
import type { AwsEnv, BaseEnv, MailEnv, RedisEnv } from '../config/config.schemas';
import { REDIS_CLIENT } from '../redis/redis.module';
import { awsClientConfig } from '../sqs/sqs-client.factory';

type MailConfig = BaseEnv & AwsEnv & RedisEnv & MailEnv & Record<string, unknown>;

/** Config variables holding secrets (by name): AWS_SECRET_ACCESS_KEY, ADMIN_TOKENS, TRACKING_SECRETS, any *_PASSWORD… */
const SECRET_VARIABLE = /(?:^|_)(?:SECRETS?|TOKENS?|PASSWORDS?|PASSWD|PRIVATE_KEY|API_KEYS?)(?:_|$)/;
/** Config variables that may carry credentials in their URL (DATABASE_URL, REDIS_URL, SQS_ENDPOINT…). */
const URL_VARIABLE = /(?:_URL|_ENDPOINT)$/;
/** Shortest secret the admin error mail can hide without masking common words. */
export const MIN_ADMIN_SECRET_LENGTH = 8;

/**
 * The config's secret values admin error mail must hide: secret-named variables (lists split) and
 * passwords in URL variables. A value shorter than {@link MIN_ADMIN_SECRET_LENGTH} cannot be hidden
 * without masking common text: in production that fails boot (naming the variable); elsewhere it
 * is left out with a warning.
 */
export function adminMailSecrets(config: Record<string, unknown>, warn: (message: string) => void): string[] {
  const found: Array<{ variable: string; what: string; value: string }> = [];
  for (const [variable, value] of Object.entries(config)) {
    if (SECRET_VARIABLE.test(variable)) {
      const values = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? [value] : [];
      values.forEach((item, index) =>
        found.push({ variable, what: values.length > 1 ? `value ${index + 1}` : 'its value', value: item }),
      );
    } else if (URL_VARIABLE.test(variable) && typeof value === 'string') {
      const password = urlPassword(value);
      if (password) found.push({ variable, what: 'its password', value: password });
    }
  }
  const production = config['NODE_ENV'] === 'production';
  return found.flatMap(({ variable, what, value }) => {
    if (value.length === 0) return [];
    if (value.length >= MIN_ADMIN_SECRET_LENGTH) return [value];
    const problem = `${variable}: ${what} is shorter than ${MIN_ADMIN_SECRET_LENGTH} characters; admin error mail could not hide it`;
    if (production) throw new Error(`${problem} (use a longer secret)`);
    warn(`${problem}, so it is not redacted (outside production only)`);
    return [];
  });
}

function urlPassword(value: string): string | undefined {
  try {
    const password = new URL(value).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/** The mail lib (ledger, SES transport, admin error reports) configured from an app's validated env. */
@Module({})
export class PlatformMailModule {
  static forRoot(app: string, config: MailConfig): DynamicModule {
    const logger = new Logger(PlatformMailModule.name);
    const secrets =
      config.ADMIN_EMAILS.length > 0 ? adminMailSecrets(config, (message) => logger.warn(message)) : [];
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
                    windowMs: config.ADMIN_ERROR_WINDOW_MS,
                    budget: {
                      mails: config.ADMIN_ERROR_MAILS_PER_WINDOW,
                      windowMs: config.ADMIN_ERROR_WINDOW_MS,
                    },
                    redact: { secrets, minSecretLength: MIN_ADMIN_SECRET_LENGTH },
                  }
                : undefined,
          }),
        }),
      ],
    };
  }
}
