import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig, withLogDestination } from '@once/platform';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { workerEnvSchema } from './config/worker.config';
import { WorkerModule } from './worker.module';

export interface WorkerBootstrapOptions {
  /** Variables layered over `process.env` (tests use this instead of mutating the environment). */
  env?: Record<string, string | undefined>;
  /** Receives the log lines instead of stdout (tests read them). */
  logDestination?: DestinationStream;
}

/** Validates config and starts the SQS consumers in an application context (no HTTP server). */
export async function bootstrap(options: WorkerBootstrapOptions = {}): Promise<INestApplicationContext> {
  const config = loadConfig('worker', workerEnvSchema, { ...process.env, ...options.env });
  const app = await NestFactory.createApplicationContext(
    withLogDestination(WorkerModule.forRoot(config), options.logDestination),
    { bufferLogs: true },
  );
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  return app;
}
