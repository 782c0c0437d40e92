import {
  ArgumentsHost,
  Catch,
  HttpException,
  HttpStatus,
  Injectable,
  IntrinsicException,
  Logger,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { AdminErrorReporter } from './admin-error.reporter';

/** The parts of an Express request the report uses. */
interface HttpRequestLike {
  method?: string;
  originalUrl?: string;
  url?: string;
  baseUrl?: string;
  route?: { path?: unknown };
  headers?: Record<string, string | string[] | undefined>;
  ip?: string;
  id?: unknown;
}

/** Whether an exception is a server error worth mailing: HttpException ≥ 500, or anything that is not a client error. */
export function isReportableException(exception: unknown): boolean {
  if (exception instanceof HttpException) return exception.getStatus() >= 500;
  // http-errors style (body-parser's 400/413…) errors are the client's fault.
  const status = (exception as { statusCode?: unknown; status?: unknown } | null)?.statusCode;
  return !(typeof status === 'number' && status >= 400 && status < 500);
}

/**
 * Global HTTP exception filter: mails 5xx and non-HTTP exceptions to the admins through
 * {@link AdminErrorReporter} (in the background), then answers exactly as Nest's default filter.
 * Register with `{ provide: APP_FILTER, useClass: AdminErrorFilter }`.
 */
@Catch()
@Injectable()
export class AdminErrorFilter extends BaseExceptionFilter {
  private readonly logger = new Logger(AdminErrorFilter.name);

  constructor(private readonly reporter: AdminErrorReporter) {
    super();
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    try {
      if (host.getType() === 'http' && isReportableException(exception)) {
        const request = host.switchToHttp().getRequest<HttpRequestLike>();
        const route = request.route?.path;
        void this.reporter.report(exception, {
          source: 'http',
          request: {
            method: request.method,
            url: request.originalUrl ?? request.url,
            route: typeof route === 'string' ? `${request.baseUrl ?? ''}${route}` : undefined,
            headers: request.headers,
            ip: request.ip,
            requestId:
              typeof request.id === 'string' || typeof request.id === 'number'
                ? String(request.id)
                : undefined,
          },
        });
      }
    } catch (error) {
      this.logger.error({ msg: 'could not queue admin error report', error: (error as Error).name });
    }
    super.catch(exception, host);
  }

  /**
   * Answers as Nest's default filter does, but logs a server error redacted (Nest's own handler logs
   * the raw exception: message, stack and own properties, with whatever secrets they carry) and a
   * client's http-errors error (body-parser's 400/413) not at all.
   */
  override handleUnknownError(
    exception: unknown,
    host: ArgumentsHost,
    applicationRef: Parameters<BaseExceptionFilter['handleUnknownError']>[2],
  ): void {
    const httpError = this.isHttpError(exception);
    const body = httpError
      ? { statusCode: exception.statusCode, message: this.getHttpErrorMessage(exception) }
      : { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, message: 'Internal server error' };
    const response: unknown = host.getArgByIndex(1);
    if (!applicationRef.isHeadersSent(response)) applicationRef.reply(response, body, body.statusCode);
    else applicationRef.end(response);
    // A client's error (body-parser's 400/413…) is in the request log line already; logging its
    // stack too would let any client fill the error log.
    if ((httpError && body.statusCode < 500) || exception instanceof IntrinsicException) return;
    this.logger.error({ msg: 'unhandled exception', err: this.reporter.redact(exception) });
  }
}
