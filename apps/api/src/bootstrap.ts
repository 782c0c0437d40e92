import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { loadConfig } from '@once/platform';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { apiEnvSchema } from './config/api.config';

export interface ApiBootstrapOptions {
  /** Variables layered over `process.env` (tests use this instead of mutating the environment). */
  env?: Record<string, string | undefined>;
}

/** Validates config, builds the HTTP app and starts listening on `PORT` (0 picks a free port). */
export async function bootstrap(options: ApiBootstrapOptions = {}): Promise<INestApplication> {
  const config = loadConfig('api', apiEnvSchema, { ...process.env, ...options.env });
  const app = await NestFactory.create(AppModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  const openApi = new DocumentBuilder()
    .setTitle('Once admin API')
    .setDescription(
      'Idempotency records, mail ledger, queues, jobs, stats. Admin routes need a bearer token or X-Api-Key.',
    )
    .setVersion(config.APP_VERSION)
    .addBearerAuth()
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Api-Key' }, 'api-key')
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openApi));
  await app.listen(config.PORT, '0.0.0.0');
  return app;
}
