import { DynamicModule, Logger, Module, RequestMethod } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule, type Params } from 'nestjs-pino';
import { type DestinationStream, levels } from 'pino';
import type { Options as PinoHttpOptions } from 'pino-http';
import { adminMailSecrets, MIN_ADMIN_SECRET_LENGTH } from '../mail/platform-mail.module';
import { serializeLogRequest, serializeLogResponse } from './http-log.serializers';
import { LogLineRedactor } from './log-line.redactor';
import { assignRequestId } from './request-id.resolver';

export * from './http-log.serializers';
export * from './log-line.redactor';
export * from './request-id.resolver';
export * from './url.redactor';

export interface LoggingOptions {
  /** Name of the app, added to every line as `app`. */
  app: string;
  version: string;
  level: string;
  pretty: boolean;
  /**
   * Configured secret values hidden in every line's message and error fields (see
   * {@link LogLineRedactor}); `logSecrets(config)` collects them from an app's config.
   */
  secrets?: readonly string[];
  /**
   * Route paths (Nest route syntax, e.g. `daily`) pino-http leaves alone when the level is above
   * `info`: there it writes no request line for them anyway, yet would build (and redact) a child
   * logger for every request. Their lines then carry no request context of pino-http's.
   */
  quietRoutes?: readonly string[];
}

/**
 * The config's secret values logs must hide: the same as admin error mail's (`adminMailSecrets`:
 * secret-named variables, passwords in URL variables). A value too short to hide fails boot in
 * production and is left out with a warning elsewhere.
 */
export function logSecrets(config: Record<string, unknown>): string[] {
  const logger = new Logger(LoggingModule.name);
  return adminMailSecrets(config, (message) => logger.warn(message.replace('admin error mail', 'logs')));
}

/** Paths that never reach a log line (the serializers hide these too; this is the last line of defence). */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-amz-security-token"]',
  'res.headers["set-cookie"]',
  // TypeORM's QueryFailedError: bound values (addresses, keys) and Postgres' "Key (email)=(…)" detail.
  'err.parameters',
  'err.detail',
  'err.driverError.parameters',
  'err.driverError.detail',
];

/** Injection token of a stream that receives the log lines instead of stdout (see {@link LogDestinationModule}). */
export const LOG_DESTINATION = Symbol('LOG_DESTINATION');

/** Sends an app's log lines to a stream of the caller's (tests read them); import it beside the app module. */
@Module({})
export class LogDestinationModule {
  static forRoot(destination: DestinationStream): DynamicModule {
    return {
      module: LogDestinationModule,
      global: true,
      providers: [{ provide: LOG_DESTINATION, useValue: destination }],
      exports: [LOG_DESTINATION],
    };
  }
}

/** `root` with its log lines sent to `destination` when one is given (the apps' `bootstrap({ logDestination })`). */
export function withLogDestination(root: DynamicModule, destination?: DestinationStream): DynamicModule {
  if (!destination) return root;
  return { ...root, imports: [...(root.imports ?? []), LogDestinationModule.forRoot(destination)] };
}

/**
 * The nestjs-pino configuration: request ids, redacted URLs and headers, secrets hidden in every
 * line's message and error fields, `/health` not logged.
 */
export function loggingParams(options: LoggingOptions, destination?: DestinationStream): Params {
  const lineRedactor = new LogLineRedactor({
    secrets: options.secrets,
    minSecretLength: MIN_ADMIN_SECRET_LENGTH,
  });
  const redaction = lineRedactor.pinoOptions();
  const pinoHttp: PinoHttpOptions = {
    level: options.level,
    base: { app: options.app, version: options.version },
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    transport:
      options.pretty && !destination ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
    genReqId: (req: IncomingMessage, res: ServerResponse) => assignRequestId(req, res),
    customProps: (req: IncomingMessage & { id?: unknown }) => ({ reqId: req.id }),
    hooks: redaction.hooks,
    serializers: {
      ...redaction.serializers,
      req: (req: Parameters<typeof serializeLogRequest>[0]) =>
        lineRedactor.hideInHttp(serializeLogRequest(req)),
      res: (res: Parameters<typeof serializeLogResponse>[0]) =>
        lineRedactor.hideInHttp(serializeLogResponse(res)),
    },
    autoLogging: { ignore: (req) => req.url === '/health' },
  };
  const quiet =
    (levels.values[options.level] ?? 0) > (levels.values.info ?? 30) ? (options.quietRoutes ?? []) : [];
  return {
    pinoHttp: destination ? [pinoHttp, destination] : pinoHttp,
    exclude: quiet.length > 0 ? quiet.map((path) => ({ path, method: RequestMethod.ALL })) : undefined,
  };
}

/** Structured logging through nestjs-pino, configured once per app. */
@Module({})
export class LoggingModule {
  static forRoot(options: LoggingOptions): DynamicModule {
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRootAsync({
          inject: [{ token: LOG_DESTINATION, optional: true }],
          useFactory: (destination?: DestinationStream) => loggingParams(options, destination),
        }),
      ],
    };
  }
}
