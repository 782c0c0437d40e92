import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';

export interface LoggingOptions {
  /** Name of the app, added to every line as `app`. */
  app: string;
  version: string;
  level: string;
  pretty: boolean;
}

/** Paths that never reach a log line. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-amz-security-token"]',
  'res.headers["set-cookie"]',
];

/** Structured logging through nestjs-pino, configured once per app. */
@Module({})
export class LoggingModule {
  static forRoot(options: LoggingOptions): DynamicModule {
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            level: options.level,
            base: { app: options.app, version: options.version },
            redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
            transport: options.pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
            autoLogging: { ignore: (req) => req.url === '/health' },
          },
        }),
      ],
    };
  }
}
