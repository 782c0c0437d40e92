import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MailValidationError } from '../mail.errors';
import type { SendMailInput } from '../mail.types';
import {
  AddressSyntaxError,
  forbiddenHeaderChar,
  type NormalizedAddress,
  parseAddress,
  type ParsedMailbox,
  parseMailbox,
  unsubscribeMailto,
  unsubscribeUrl,
} from '../address/mail-address';

/** Header carrying the idempotency key on every email. */
export const IDEMPOTENCY_KEY_HEADER = 'X-Once-Key';

export interface MailHeader {
  name: string;
  value: string;
}

/** A validated email, ready for the ledger and the transport. */
export interface PreparedMail {
  idempotencyKey: string;
  /** Recipients as sent: one per mailbox, domains in ASCII. */
  to: string[];
  /** Comparison keys of `to` (same order): what suppression, rate limits and the ledger use. */
  recipientKeys: string[];
  /** The From header: one mailbox, display name quoted or RFC 2047-encoded as needed. */
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

/** A Zod string refined by one of the address parsers: each failure becomes an issue on its field. */
const parsedWith = <T>(parse: (value: string) => T) =>
  z.string().transform((value, ctx) => {
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof AddressSyntaxError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
      return z.NEVER;
    }
  });

const oneLine = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .superRefine((value, ctx) => {
      const bad = forbiddenHeaderChar(value);
      if (bad) ctx.addIssue({ code: 'custom', message: `must not contain ${bad}` });
    });
const headerName = z
  .string()
  .regex(/^[\x21-\x39\x3b-\x7e]{1,126}$/, 'header names are printable ASCII without ":"');
const headerValue = z.string().regex(/^[\x20-\x7e]{0,870}$/, 'header values are printable ASCII on one line');
const address = parsedWith(parseAddress);

const inputSchema = z
  .object({
    idempotencyKey: z
      .string()
      .regex(/^[\x21-\x7e]{1,512}$/, 'must be 1–512 printable ASCII characters without spaces'),
    to: z.preprocess(
      (value) => (typeof value === 'string' ? [value] : value),
      z.array(address).min(1).max(50),
    ),
    from: parsedWith(parseMailbox).optional(),
    subject: oneLine(998),
    text: z.string().min(1),
    html: z.string().min(1).optional(),
    headers: z.record(headerName, headerValue).optional(),
    listUnsubscribe: z
      .object({
        url: parsedWith(unsubscribeUrl).optional(),
        mailto: parsedWith(unsubscribeMailto).optional(),
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
      result.error.issues.map((issue) => {
        const path = typeof input.to === 'string' && issue.path[0] === 'to' ? ['to'] : issue.path;
        return `${path.join('.') || '(root)'}: ${issue.message}`;
      }),
    );
  }
  const mail = result.data;
  const headers: MailHeader[] = [{ name: IDEMPOTENCY_KEY_HEADER, value: mail.idempotencyKey }];
  if (mail.listUnsubscribe) {
    const targets: string[] = [];
    if (mail.listUnsubscribe.url) targets.push(`<${mail.listUnsubscribe.url}>`);
    if (mail.listUnsubscribe.mailto) targets.push(`<${mail.listUnsubscribe.mailto}>`);
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

  const to = uniqueRecipients(mail.to);
  let from: ParsedMailbox;
  try {
    from = mail.from ?? parseMailbox(defaultFrom);
  } catch (error) {
    throw new MailValidationError([`from: the default sender ${(error as Error).message}`]);
  }
  const prepared = {
    to: to.map((recipient) => recipient.address),
    from: from.header,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    headers,
  };
  const contentHash = createHash('sha256').update(JSON.stringify(prepared)).digest('hex');
  return {
    idempotencyKey: mail.idempotencyKey,
    ...prepared,
    recipientKeys: to.map((r) => r.key),
    contentHash,
  };
}

/** One entry per mailbox (first spelling wins): `X@EXAMPLE.COM` and `x@example.com` are one recipient. */
function uniqueRecipients(addresses: NormalizedAddress[]): NormalizedAddress[] {
  const seen = new Map<string, NormalizedAddress>();
  for (const address of addresses) if (!seen.has(address.key)) seen.set(address.key, address);
  return [...seen.values()];
}
