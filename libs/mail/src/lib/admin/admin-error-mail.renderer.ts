import type { ResolvedAdminErrorOptions } from '../mail.options';
import { describeThrown } from './error.fingerprint';
import { SecretRedactor } from './secret.redactor';

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

function indent(text: string, prefix = '  '): string {
  return text
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Subject and plain-text body of an admin error mail; everything passes through the redactor. */
export function renderAdminErrorMail(
  input: AdminErrorMailInput,
  options: ResolvedAdminErrorOptions,
  redactor: SecretRedactor,
): { subject: string; text: string } {
  const { name, message, stack } = describeThrown(input.error);
  const safeMessage = redactor.redactString(message);
  const app = `${options.appName} ${options.appVersion}${options.environment ? ` (${options.environment})` : ''}`;
  const source = input.context.source ?? 'app';

  const subjectLine = `${options.subjectPrefix} ${options.appName} ${source}: ${name}: ${safeMessage}`
    .replace(/\s+/g, ' ')
    .trim();
  const subject =
    subjectLine.length > MAX_SUBJECT ? `${subjectLine.slice(0, MAX_SUBJECT - 1)}…` : subjectLine;

  const lines = [
    `${app} reported an unhandled error.`,
    '',
    `Error:       ${name}: ${safeMessage}`,
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
    const headers = redactor.redact(request.headers ?? {}) as Record<string, string | string[] | undefined>;
    lines.push(
      '',
      'Request',
      `  Method:     ${request.method ?? '-'}`,
      `  Path:       ${request.url ? redactor.redactString(request.url) : '-'}`,
      ...(request.route ? [`  Route:      ${request.route}`] : []),
      `  User agent: ${header(headers['user-agent']) ?? '-'}`,
      ...(request.ip ? [`  Client IP:  ${request.ip}`] : []),
      ...(request.requestId ? [`  Request id: ${redactor.redactString(request.requestId)}`] : []),
      '  Headers:',
      ...Object.entries(headers).map(([key, value]) => `    ${key}: ${header(value) ?? ''}`),
    );
  }

  if (input.context.details && Object.keys(input.context.details).length > 0) {
    lines.push('', 'Details', indent(JSON.stringify(redactor.redact(input.context.details), null, 2)));
  }

  lines.push('', 'Stack', indent(redactor.redactString(stack ?? `${name}: ${message}`)));
  return { subject, text: `${lines.join('\n')}\n` };
}
