import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig, withLogDestination } from '@once/platform';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { schedulerEnvSchema } from './config/scheduler.config';
import { SchedulerModule } from './scheduler.module';

export interface SchedulerBootstrapOptions {
  /** Variables layered over `process.env` (tests use this instead of mutating the environment). */
  env?: Record<string, string | undefined>;
  /** Receives the log lines instead of stdout (tests read them). */
  logDestination?: DestinationStream;
}

/** Validates config and starts the cron jobs in an application context (no HTTP server). */
export async function bootstrap(options: SchedulerBootstrapOptions = {}): Promise<INestApplicationContext> {
  const config = loadConfig('scheduler', schedulerEnvSchema, { ...process.env, ...options.env });
  const app = await NestFactory.createApplicationContext(
    withLogDestination(SchedulerModule.forRoot(config), options.logDestination),
    {
      bufferLogs: true,
    },
  );
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  return app;
}
