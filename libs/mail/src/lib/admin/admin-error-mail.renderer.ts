import type { ResolvedAdminErrorOptions } from '../mail.options';
import { describeThrown } from './error.fingerprint';
import type { SecretRedactor } from './secret.redactor';
import {
  errorFields,
  isAggregateErrorValue,
  isErrorValue,
  ownEntries,
  readProperty,
  safeJson,
  typeOfThrown,
} from './thrown-value.reader';

/** Where an error happened. HTTP filters fill `request`; workers and schedulers fill `details`. */
export interface AdminErrorContext {
  /** `http`, `worker`, `scheduler`… Default `app`. */
  source?: string;
  request?: AdminErrorRequest;
  /** Queue, message id, job name, slot… (redacted before mailing). */
  details?: Record<string, unknown>;
}

export interface AdminErrorRequest {
  method?: string;
  /** Original URL with query string (redacted before mailing). */
  url?: string;
  /** Route pattern, e.g. `/users/:id` (groups errors across ids). */
  route?: string;
  headers?: Record<string, string | string[] | undefined>;
  ip?: string;
  requestId?: string;
}

export interface AdminErrorMailInput {
  error: unknown;
  context: AdminErrorContext;
  fingerprint: string;
  occurredAt: Date;
  /** Occurrences not mailed since the previous report of this fingerprint. */
  moreOccurrences: number;
}

const MAX_SUBJECT = 180;
/** The whole body is cut here (after redaction): far above any real report, well below SES's 10 MB. */
const MAX_TEXT = 200_000;
const MAX_CAUSES = 5;
const MAX_AGGREGATED = 10;
/** Fields every error shows in its own lines, not among its properties. */
const SHOWN_FIELDS = new Set(['name', 'message', 'stack', 'cause', 'errors']);

function indent(text: string, prefix = '  '): string {
  return text
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

function header(value: unknown): string | undefined {
  return Array.isArray(value) ? value.join(', ') : typeof value === 'string' ? value : undefined;
}

/** Name, message and stack of anything thrown, redacted; a non-Error object's fields are redacted before they become its message. */
function describeRedacted(
  error: unknown,
  redactor: SecretRedactor,
): { name: string; message: string; stack?: string } {
  const isPlainObject = typeof error === 'object' && error !== null && !isErrorValue(error);
  const hasMessage = isPlainObject && typeof readProperty(error, 'message') === 'string';
  if (isPlainObject && !hasMessage) {
    const { name } = describeThrown(error);
    return {
      name: redactor.redactString(name, 200),
      message: redactor.redactString(safeJson(redactor.redact(error))),
    };
  }
  const described = describeThrown(error);
  return {
    name: redactor.redactString(described.name, 200),
    message: redactor.redactString(described.message),
    stack: described.stack === undefined ? undefined : redactor.redactString(described.stack),
  };
}

/** Own enumerable properties of a thrown value not shown elsewhere (a pg error's `detail`, an AWS SDK error's `$metadata`…). */
function extraProperties(error: unknown): Record<string, unknown> | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const fields = isErrorValue(error) ? errorFields(error) : ownEntries(error);
  const extra = Object.fromEntries(Object.entries(fields).filter(([key]) => !SHOWN_FIELDS.has(key)));
  return Object.keys(extra).length > 0 ? extra : undefined;
}

/** Stack (or `name: message`), properties, cause chain and aggregated errors of one thrown value. */
function errorLines(error: unknown, redactor: SecretRedactor, seen: Set<unknown>, depth: number): string[] {
  seen.add(error);
  const { name, message, stack } = describeRedacted(error, redactor);
  const lines = [indent(stack ?? `${name}: ${message}`)];
  const properties = extraProperties(error);
  if (properties && (isErrorValue(error) || typeof readProperty(error, 'message') === 'string')) {
    lines.push('  Properties:', indent(JSON.stringify(redactor.redact(properties), null, 2), '    '));
  }
  const aggregated = isAggregateErrorValue(error) ? readProperty(error, 'errors') : undefined;
  if (Array.isArray(aggregated)) {
    const errors = aggregated.slice(0, MAX_AGGREGATED);
    errors.forEach((inner: unknown, index) => {
      if (seen.has(inner)) return;
      lines.push(
        '',
        `Aggregated error ${index + 1} of ${aggregated.length}`,
        ...errorLines(inner, redactor, seen, depth + 1),
      );
    });
    if (aggregated.length > errors.length)
      lines.push('', `${aggregated.length - errors.length} more aggregated error(s) not shown.`);
  }
  const cause = isErrorValue(error) ? readProperty(error, 'cause') : undefined;
  if (cause !== undefined && !seen.has(cause)) {
    lines.push(
      '',
      depth + 1 >= MAX_CAUSES ? 'Caused by: (further causes not shown)' : 'Caused by',
      ...(depth + 1 >= MAX_CAUSES ? [] : errorLines(cause, redactor, seen, depth + 1)),
    );
  }
  return lines;
}

/**
 * Subject and plain-text body of an admin error mail. Every part (message, request, headers,
 * details, stack, the error's own properties, its cause chain and aggregated errors) passes through
 * the redactor, which redacts before it truncates; the assembled subject and body pass once more.
 */
export function renderAdminErrorMail(
  input: AdminErrorMailInput,
  options: ResolvedAdminErrorOptions,
  redactor: SecretRedactor,
): { subject: string; text: string } {
  const { name, message } = describeRedacted(input.error, redactor);
  const app = `${options.appName} ${options.appVersion}${options.environment ? ` (${options.environment})` : ''}`;
  const source = redactor.redactString(input.context.source ?? 'app', 200);

  const subjectLine = redactor
    .redactString(`${options.subjectPrefix} ${options.appName} ${source}: ${name}: ${message}`, Infinity)
    .replace(/\s+/g, ' ')
    .trim();
  const subject =
    subjectLine.length > MAX_SUBJECT ? `${subjectLine.slice(0, MAX_SUBJECT - 1)}…` : subjectLine;

  const lines = [
    `${app} reported an unhandled error.`,
    '',
    `Error:       ${name}: ${message}`,
    `Source:      ${source}`,
    `App:         ${options.appName}`,
    `Version:     ${options.appVersion}`,
    ...(options.environment ? [`Environment: ${options.environment}`] : []),
    `When:        ${input.occurredAt.toISOString()}`,
    `Fingerprint: ${input.fingerprint}`,
  ];
  if (input.moreOccurrences > 0) {
    lines.push(
      '',
      `${input.moreOccurrences} more occurrence(s) of this error since the last report were not mailed.`,
    );
  }

  const request = input.context.request;
  if (request) {
    const headers = (redactor.redact(request.headers ?? {}) ?? {}) as Record<string, unknown>;
    const field = (value: string | undefined) =>
      value === undefined ? undefined : redactor.redactString(value, 2_000);
    lines.push(
      '',
      'Request',
      `  Method:     ${field(request.method) ?? '-'}`,
      `  Path:       ${field(request.url) ?? '-'}`,
      ...(request.route ? [`  Route:      ${field(request.route)}`] : []),
      `  User agent: ${header(headers['user-agent']) ?? '-'}`,
      ...(request.ip ? [`  Client IP:  ${field(request.ip)}`] : []),
      ...(request.requestId ? [`  Request id: ${field(request.requestId)}`] : []),
      '  Headers:',
      ...Object.entries(headers).map(
        ([key, value]) => `    ${key}: ${header(value) ?? JSON.stringify(value) ?? ''}`,
      ),
    );
  }

  if (input.context.details && Object.keys(input.context.details).length > 0) {
    lines.push('', 'Details', indent(JSON.stringify(redactor.redact(input.context.details), null, 2)));
  }

  lines.push('', 'Stack', ...errorLines(input.error, redactor, new Set(), 0));
  const text = redactor.redactString(`${lines.join('\n')}\n`, MAX_TEXT);
  return { subject, text };
}

/**
 * The mail sent when {@link renderAdminErrorMail} itself failed on a hostile thrown value: no part
 * of the value, only its type, where and when, so the alert is never lost.
 */
export function renderUnrenderableErrorMail(
  input: AdminErrorMailInput,
  options: ResolvedAdminErrorOptions,
  redactor: SecretRedactor,
): { subject: string; text: string } {
  const type = redactor.redactString(typeOfThrown(input.error), 100);
  const source = redactor.redactString(input.context.source ?? 'app', 200);
  const subject = `${options.subjectPrefix} ${options.appName} ${source}: an error that could not be rendered (${type})`;
  const text = [
    `${options.appName} ${options.appVersion} reported an error that could not be rendered: ${type}.`,
    '',
    `Source:      ${source}`,
    `When:        ${input.occurredAt.toISOString()}`,
    `Fingerprint: ${input.fingerprint}`,
    ...(input.moreOccurrences > 0
      ? ['', `${input.moreOccurrences} more occurrence(s) were not mailed.`]
      : []),
    '',
  ].join('\n');
  return { subject: subject.slice(0, MAX_SUBJECT), text };
}
