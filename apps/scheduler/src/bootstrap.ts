import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig } from '@once/platform';
import { Logger } from 'nestjs-pino';
import { schedulerEnvSchema } from './config/scheduler.config';
import { SchedulerModule } from './scheduler.module';

export interface SchedulerBootstrapOptions {
  /** Variables layered over `process.env` (tests use this instead of mutating the environment). */
  env?: Record<string, string | undefined>;
}

/** Validates config and starts the cron jobs in an application context (no HTTP server). */
export async function bootstrap(options: SchedulerBootstrapOptions = {}): Promise<INestApplicationContext> {
  const config = loadConfig('scheduler', schedulerEnvSchema, { ...process.env, ...options.env });
  const app = await NestFactory.createApplicationContext(SchedulerModule.forRoot(config), {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  return app;
}
