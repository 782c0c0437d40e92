import type { ResolvedAdminErrorOptions } from '../mail.options';
import type { AdminErrorSummary } from '../rate-limit/admin-error.budget';
import type { SecretRedactor } from './secret.redactor';

const MAX_MESSAGE = 120;

function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1_000} s`;
}

function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * Subject and plain-text body of the mail summarising the errors a window's budget left unmailed:
 * how many, the most frequent fingerprints with their count, error name, scope and message, and
 * every error name + scope (bounded) rarest first, so a flood of one route cannot hide a rare error;
 * all passed through the redactor again (they were stored redacted). `partial`: sent before the
 * window ended (this process is shutting down).
 */
export function renderAdminErrorSummary(
  summary: AdminErrorSummary,
  options: ResolvedAdminErrorOptions,
  redactor: SecretRedactor,
  partial = false,
): { subject: string; text: string } {
  const { mails, windowMs, topFingerprints } = options.budget;
  const from = new Date(summary.windowStart).toISOString();
  const to = new Date(summary.windowStart + windowMs).toISOString();
  const app = `${options.appName} ${options.appVersion}${options.environment ? ` (${options.environment})` : ''}`;
  const counted = `${summary.distinct} more distinct error${summary.distinct === 1 ? '' : 's'}`;
  const subject = clip(
    `${options.subjectPrefix} ${options.appName}: ${counted} not mailed (budget ${mails} per ${duration(windowMs)})`,
    180,
  );
  const top = summary.fingerprints.slice(0, topFingerprints);
  const lines = [
    `${app} used up its admin error mail budget (${mails} mails per ${duration(windowMs)}) in the window ${from} – ${to}.`,
    `${counted} (${summary.occurrences} occurrence${summary.occurrences === 1 ? '' : 's'}) were counted but not mailed${partial ? ' so far (sent early: the process is shutting down)' : ''}.`,
    ...(summary.seq > 1
      ? [`This is summary ${summary.seq} of the window (errors counted after the previous one).`]
      : []),
    '',
    `Top ${top.length} fingerprint${top.length === 1 ? '' : 's'} by count:`,
    ...top.map(({ fingerprint, count, meta }) => {
      const what = meta
        ? `${redactor.redactString(meta.name)} in ${redactor.redactString(meta.scope)}: ${clip(redactor.redactString(meta.message), MAX_MESSAGE)}`
        : '(no details)';
      return `  ${String(count).padStart(6)}  ${fingerprint}  ${what}`;
    }),
  ];
  const rest = summary.distinct - top.length;
  if (rest > 0) lines.push(`  … and ${rest} more fingerprint${rest === 1 ? '' : 's'}.`);
  if (summary.groups.length > 0) {
    const grouped = summary.groups.reduce((sum, group) => sum + group.count, 0);
    lines.push(
      '',
      'By error and where (rarest first):',
      ...summary.groups.map(({ name, scope, count, fingerprints }) => {
        const many = fingerprints > 1 ? ` (${fingerprints} fingerprints)` : '';
        return `  ${String(count).padStart(6)}  ${clip(`${redactor.redactString(name, 200)} in ${redactor.redactString(scope, 300)}`, MAX_MESSAGE)}${many}`;
      }),
    );
    if (grouped < summary.occurrences) {
      lines.push(`  … and ${summary.occurrences - grouped} occurrence(s) in further errors or places.`);
    }
  }
  lines.push(
    '',
    'Each of these errors is mailed on its own again the next time it occurs in a window with budget left.',
  );
  return { subject, text: `${lines.join('\n')}\n` };
}
