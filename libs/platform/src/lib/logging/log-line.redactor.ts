import { REDACTED, SecretRedactor } from '@once/mail';
import { LOG_REDACTED } from './url.redactor';
import { stdSerializers, type LoggerOptions, type LogFn, type SerializerFn } from 'pino';

/**
 * Fields of a log line's object that carry error text: redacted in every line. `err` goes through
 * pino's error serializer first (message, stack, own properties, cause).
 */
export const ERROR_LOG_FIELDS: readonly string[] = [
  'err',
  'error',
  'errors',
  'reason',
  'detail',
  'details',
  'message',
  'cause',
  'stack',
];

/** Longest string kept in a redacted field or message; the rest is cut (`…[truncated]`). */
export const MAX_REDACTED_LOG_STRING = 8_192;

export interface LogLineRedactorOptions {
  /** Configured secret values (see `adminMailSecrets`), hidden wherever they occur in those fields and in `msg`. */
  secrets?: readonly string[];
  /** Shortest secret value hidden (shorter ones would mask common words). */
  minSecretLength?: number;
}

const ERROR_FIELDS = new Set(ERROR_LOG_FIELDS);

function isPlainLogObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !(value instanceof Error) && !Array.isArray(value);
}

/**
 * Hides secrets in every log line with the admin mail redactor's rules (configured secret values,
 * auth schemes, URL credentials, token formats, PEM blocks, secret-named assignments): the `msg`
 * and its string arguments, the {@link ERROR_LOG_FIELDS} of the line's object, and what the `err`
 * serializer makes of an error. Other fields are not scanned (cost).
 */
export class LogLineRedactor {
  private readonly redactor: SecretRedactor;
  private readonly hasSecrets: boolean;

  constructor(options: LogLineRedactorOptions = {}) {
    const minLength = options.minSecretLength ?? 8;
    // Shorter values would mask common words (`logSecrets` refuses them in production).
    const secrets = [...new Set(options.secrets ?? [])].filter((secret) => secret.length >= minLength);
    this.hasSecrets = secrets.length > 0;
    this.redactor = new SecretRedactor({
      secrets,
      minSecretLength: minLength,
      maxStringLength: MAX_REDACTED_LOG_STRING,
    });
  }

  /** A message or interpolated string, redacted and cut to {@link MAX_REDACTED_LOG_STRING}. */
  redactMessage(message: string): string {
    return this.redactor.redactString(message);
  }

  /** The text with every configured secret hidden, in any encoding; nothing else is scanned (cheap: request URLs and headers). */
  hideConfiguredSecrets(text: string): string {
    return this.hasSecrets ? this.redactor.hideSecrets(text).split(REDACTED).join(LOG_REDACTED) : text;
  }

  /** A serialized request or response with the configured secrets hidden in its URL and header values. */
  hideInHttp<T extends { url?: unknown; headers?: unknown }>(serialized: T): T {
    if (!this.hasSecrets) return serialized;
    const hide = (value: unknown): unknown =>
      typeof value === 'string'
        ? this.hideConfiguredSecrets(value)
        : Array.isArray(value)
          ? value.map(hide)
          : value;
    const out = { ...serialized };
    if (typeof out.url === 'string') out.url = this.hideConfiguredSecrets(out.url);
    if (out.headers && typeof out.headers === 'object') {
      out.headers = Object.fromEntries(
        Object.entries(out.headers).map(([name, value]) => [name, hide(value)]),
      );
    }
    return out;
  }

  /** Any value logged under an error field: strings scanned, errors serialized, objects copied redacted. */
  redactValue(value: unknown): unknown {
    if (typeof value === 'string') return this.redactor.redactString(value);
    if (value instanceof Error) return this.redactor.redact(stdSerializers.err(value));
    if (typeof value === 'object' && value !== null) return this.redactor.redact(value);
    return value;
  }

  /** A shallow copy of a line's object with its error fields (other than `err`, left to the serializer) redacted. */
  redactFields(fields: Record<string, unknown>): Record<string, unknown> {
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(fields)) {
      if (key === 'err' || !(ERROR_FIELDS.has(key) || (key === 'msg' && typeof fields[key] === 'string')))
        continue;
      copy ??= { ...fields };
      copy[key] = this.redactValue(fields[key]);
    }
    return copy ?? fields;
  }

  /**
   * The arguments of a pino log call, redacted (what pino's `hooks.logMethod` passes on). Without a
   * message pino would log the error's own message as `msg`: it is passed redacted instead.
   */
  redactArguments(args: unknown[]): unknown[] {
    const [first] = args;
    const redacted = args.map((arg, index) => {
      if (typeof arg === 'string') return this.redactMessage(arg);
      if (index === 0 && isPlainLogObject(arg)) return this.redactFields(arg);
      return arg;
    });
    if (args.length < 2 || args[1] === undefined) {
      const error =
        first instanceof Error
          ? first
          : isPlainLogObject(first) && first['msg'] === undefined
            ? first['err']
            : undefined;
      const message = (error as { message?: unknown } | undefined)?.message;
      if (typeof message === 'string') return [redacted[0], this.redactMessage(message)];
    }
    return redacted;
  }

  /** The pino options that apply this redactor to every line of a logger and its children. */
  pinoOptions(): Pick<LoggerOptions, 'hooks' | 'serializers'> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const redactor = this;
    const errSerializer: SerializerFn = (value: unknown) => redactor.redactValue(value);
    return {
      hooks: {
        logMethod(this: unknown, args: Parameters<LogFn>, method: LogFn) {
          return method.apply(this, redactor.redactArguments(args) as Parameters<LogFn>);
        },
      },
      serializers: { err: errSerializer },
    };
  }
}
