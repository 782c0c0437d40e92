import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { loadConfig, requestIdMiddleware, withLogDestination } from '@once/platform';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module';
import { apiEnvSchema } from './config/api.config';
import { MAX_SNS_BODY_BYTES } from './ses-notifications/sns-body.reader';

export interface ApiBootstrapOptions {
  /** Variables layered over `process.env` (tests use this instead of mutating the environment). */
  env?: Record<string, string | undefined>;
  /** Receives the log lines instead of stdout (tests read them). */
  logDestination?: DestinationStream;
}

/** Validates config, builds the HTTP app and starts listening on `PORT` (0 picks a free port). */
export async function bootstrap(options: ApiBootstrapOptions = {}): Promise<INestApplication> {
  const config = loadConfig('api', apiEnvSchema, { ...process.env, ...options.env });
  const root = withLogDestination(AppModule.forRoot(config), options.logDestination);
  const app = await NestFactory.create<NestExpressApplication>(root, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  // req.ip (rate limits, logs) is the X-Forwarded-For entry the trusted proxies vouch for, else the peer.
  app.set('trust proxy', config.TRUST_PROXY);
  app.disable('x-powered-by');
  // Before the body parser, so a 413 carries the id too; pino-http logs the same id.
  app.use(requestIdMiddleware);
  app.use(
    helmet({
      // Over plain HTTP (local, inside the VPC) the directive would send Swagger UI's requests to https.
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    }),
  );
  // The limit /webhooks/ses reads SNS bodies with, instead of Express' 100 KB default.
  app.useBodyParser('json', { limit: MAX_SNS_BODY_BYTES });
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
