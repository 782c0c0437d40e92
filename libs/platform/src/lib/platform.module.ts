import { DynamicModule, Module } from '@nestjs/common';
import { AppConfigModule } from './config/app-config.module';
import type {
  AwsEnv,
  BaseEnv,
  DatabaseEnv,
  DedupEnv,
  MailEnv,
  QueuesEnv,
  RedisEnv,
} from './config/config.schemas';
import { PlatformDedupModule } from './dedup/platform-dedup.module';
import { DatabaseModule } from './database/database.module';
import { ONCE_ENTITIES, ONCE_MIGRATIONS } from './database/once.schema';
import { LoggingModule, logSecrets } from './logging/logging.module';
import { PlatformMailModule } from './mail/platform-mail.module';
import { OpsModule } from './ops/ops.module';
import type { HealthDependency } from './ops/ops.options';
import { RedisModule } from './redis/redis.module';

/** What every app's environment contains. */
export type PlatformEnv = BaseEnv & DatabaseEnv & RedisEnv & AwsEnv & QueuesEnv & MailEnv & DedupEnv;

export interface PlatformModuleOptions<C extends PlatformEnv> {
  /** The app's name: the `app` field of its log lines and label of its metrics, its connection names (`once-<name>`), its admin error mail. */
  appName: string;
  /** The app's validated config (see loadConfig). */
  config: C;
  /** What `/health` probes. */
  health: readonly HealthDependency[];
  /** Queue the SQS health probe resolves. */
  probeQueue: string;
  /** Serve `/health` and `/metrics` on this port (apps without an HTTP server). */
  opsPort?: number;
  /** Cap on the app's Postgres pool. */
  maxPoolSize?: number;
  /** Routes pino-http leaves alone above `info` (see LoggingOptions.quietRoutes): the api's `daily`. */
  quietRoutes?: readonly string[];
  /** Boot while Postgres is unreachable and connect in the background (the api: `/daily/` needs no database). */
  connectDatabaseInBackground?: boolean;
  /** Exactly-once handling: global IdempotencyService (`@Idempotent`) and DedupStatsService, from DEDUP_*. Default false. */
  dedup?: boolean;
  /** The mail lib (global MailService, ledger, suppression, admin error reports to ADMIN_EMAILS), from MAIL_* and SES_*. Default false. */
  mail?: boolean;
}

/**
 * The infrastructure each app configures once: typed config, nestjs-pino, Postgres (TypeORM,
 * migrations), Redis, health and metrics; and, if the app opts in, exactly-once handling
 * (@once/dedup, `dedup: true`) and the mail lib with admin error reports (`mail: true`).
 */
@Module({})
export class PlatformModule {
  static forRoot<C extends PlatformEnv>(options: PlatformModuleOptions<C>): DynamicModule {
    const { appName: app, config } = options;
    const secrets = logSecrets(config);
    return {
      module: PlatformModule,
      imports: [
        AppConfigModule.forRoot(config),
        LoggingModule.forRoot({
          app,
          version: config.APP_VERSION,
          level: config.LOG_LEVEL,
          pretty: config.LOG_PRETTY,
          secrets,
          quietRoutes: options.quietRoutes,
        }),
        DatabaseModule.forRoot({
          url: config.DATABASE_URL,
          poolSize: Math.min(config.DATABASE_POOL_SIZE, options.maxPoolSize ?? Infinity),
          migrateOnBoot: config.DATABASE_MIGRATE_ON_BOOT,
          entities: ONCE_ENTITIES,
          migrations: ONCE_MIGRATIONS,
          applicationName: `once-${app}`,
          connectInBackground: options.connectDatabaseInBackground,
        }),
        RedisModule.forRoot({ url: config.REDIS_URL, connectionName: `once-${app}` }),
        ...(options.mail ? [PlatformMailModule.forRoot(app, config)] : []),
        ...(options.dedup ? [PlatformDedupModule.forRoot(config)] : []),
        OpsModule.forRoot({
          app,
          dependencies: options.health,
          aws: config,
          probeQueue: options.probeQueue,
          port: options.opsPort,
          secrets,
        }),
      ],
    };
  }
}
