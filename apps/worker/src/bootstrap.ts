import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig } from '@once/platform';
import { Logger } from 'nestjs-pino';
import { workerEnvSchema } from './config/worker.config';
import { WorkerModule } from './worker.module';

export interface WorkerBootstrapOptions {
  /** Variables layered over `process.env` (tests use this instead of mutating the environment). */
  env?: Record<string, string | undefined>;
}

/** Validates config and starts the SQS consumers in an application context (no HTTP server). */
export async function bootstrap(options: WorkerBootstrapOptions = {}): Promise<INestApplicationContext> {
  const config = loadConfig('worker', workerEnvSchema, { ...process.env, ...options.env });
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  return app;
}
