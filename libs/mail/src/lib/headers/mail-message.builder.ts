import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MailValidationError } from '../mail.errors';
import type { SendMailInput } from '../mail.types';

/** Header carrying the idempotency key on every email. */
export const IDEMPOTENCY_KEY_HEADER = 'X-Once-Key';

export interface MailHeader {
  name: string;
  value: string;
}

/** A validated email, ready for the ledger and the transport. */
export interface PreparedMail {
  idempotencyKey: string;
  to: string[];
  from: string;
  subject: string;
  text: string;
  html?: string;
  headers: MailHeader[];
  /** Hash of the content (recipients, sender, subject, bodies, headers): tells a reused key apart from a retry. */
  contentHash: string;
}

const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'date',
  'message-id',
  'reply-to',
  'return-path',
  'sender',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'list-unsubscribe',
  'list-unsubscribe-post',
  IDEMPOTENCY_KEY_HEADER.toLowerCase(),
]);

const oneLine = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((value) => !/[\r\n]/.test(value), 'must not contain line breaks');
const headerName = z
  .string()
  .regex(/^[\x21-\x39\x3b-\x7e]{1,126}$/, 'header names are printable ASCII without ":"');
const headerValue = z.string().regex(/^[\x20-\x7e]{0,870}$/, 'header values are printable ASCII on one line');
const httpsUrl = z.url().refine((value) => new URL(value).protocol === 'https:', 'must be an https URL');

const inputSchema = z
  .object({
    idempotencyKey: z
      .string()
      .regex(/^[\x21-\x7e]{1,512}$/, 'must be 1–512 printable ASCII characters without spaces'),
    to: z.union([z.email(), z.array(z.email()).min(1).max(50)]),
    from: oneLine(320).optional(),
    subject: oneLine(998),
    text: z.string().min(1),
    html: z.string().min(1).optional(),
    headers: z.record(headerName, headerValue).optional(),
    listUnsubscribe: z
      .object({
        url: httpsUrl.optional(),
        mailto: z
          .string()
          .min(3)
          .regex(/^(mailto:)?[^\s<>,]+@[^\s<>,]+$/, 'must be an address or mailto: URL')
          .optional(),
        oneClick: z.boolean().optional(),
      })
      .refine((value) => value.url || value.mailto, 'needs url or mailto')
      .refine((value) => !value.oneClick || value.url, 'one-click needs an https url')
      .optional(),
  })
  .strict();

/** Validates a send request and builds its headers: `X-Once-Key`, `List-Unsubscribe(-Post)`, then the caller's. */
export function prepareMail(input: SendMailInput, defaultFrom: string): PreparedMail {
  const result = inputSchema.safeParse(input);
  if (!result.success) {
    throw new MailValidationError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  const mail = result.data;
  const headers: MailHeader[] = [{ name: IDEMPOTENCY_KEY_HEADER, value: mail.idempotencyKey }];
  if (mail.listUnsubscribe) {
    const targets: string[] = [];
    if (mail.listUnsubscribe.url) targets.push(`<${mail.listUnsubscribe.url}>`);
    if (mail.listUnsubscribe.mailto) {
      const mailto = mail.listUnsubscribe.mailto;
      targets.push(`<${mailto.startsWith('mailto:') ? mailto : `mailto:${mailto}`}>`);
    }
    headers.push({ name: 'List-Unsubscribe', value: targets.join(', ') });
    if (mail.listUnsubscribe.oneClick)
      headers.push({ name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' });
  }
  const reserved = Object.keys(mail.headers ?? {}).filter((name) => RESERVED_HEADERS.has(name.toLowerCase()));
  if (reserved.length > 0)
    throw new MailValidationError([`headers: reserved header(s) ${reserved.join(', ')}`]);
  for (const [name, value] of Object.entries(mail.headers ?? {})) headers.push({ name, value });
  for (const header of headers) {
    if (!/^[\x20-\x7e]{0,870}$/.test(header.value))
      throw new MailValidationError([`headers: ${header.name} is too long or not ASCII`]);
  }

  const to = Array.isArray(mail.to) ? [...new Set(mail.to)] : [mail.to];
  const prepared = {
    to,
    from: mail.from ?? defaultFrom,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    headers,
  };
  const contentHash = createHash('sha256').update(JSON.stringify(prepared)).digest('hex');
  return { idempotencyKey: mail.idempotencyKey, ...prepared, contentHash };
}

/** Lower-cased address: the form suppression and rate-limit lookups use. */
export function normalizeAddress(address: string): string {
  const match = /<([^<>]+)>\s*$/.exec(address);
  return (match ? match[1] : address).trim().toLowerCase();
}
