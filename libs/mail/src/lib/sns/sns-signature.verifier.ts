import { createVerify } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { z } from 'zod';
import {
  DEFAULT_SNS_CERTIFICATE_OPTIONS,
  SnsCertificateStore,
  boundedGet,
  fetchText,
  type SnsCertificateOptions,
  type SnsHttpGet,
} from './sns-certificate.store';
import { SnsVerificationError } from './sns-verification.error';

export { SnsVerificationError, type SnsRejectionReason } from './sns-verification.error';
export {
  DEFAULT_SNS_CERTIFICATE_OPTIONS,
  SnsHttpStatusError,
  type SnsCertificateOptions,
  type SnsHttpGet,
  type SnsHttpGetOptions,
} from './sns-certificate.store';

/** Hosts SNS signs from and sends SubscribeURLs for: `sns.<region>.amazonaws.com(.cn)`. */
export const DEFAULT_SNS_HOST_PATTERN = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

export type SnsMessageType = 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';

/** An SNS HTTP(S) delivery, as posted to the endpoint. */
export interface SnsMessage {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: string;
  Signature: string;
  SigningCertURL: string;
  Subject?: string | null;
  Token?: string;
  SubscribeURL?: string;
  UnsubscribeURL?: string;
}

export interface SnsVerifierOptions {
  /** TopicArns accepted (exact match). Anything else is rejected before any certificate is fetched. */
  topicArns: string[];
  /** Hosts allowed for SigningCertURL and SubscribeURL. Default {@link DEFAULT_SNS_HOST_PATTERN}; https is always required. */
  hostPattern?: RegExp;
  /** GETs a URL and returns its body; used for the certificate and to confirm subscriptions. Default: `fetch`, no redirects. */
  httpGet?: SnsHttpGet;
  /** Oldest `Timestamp` accepted, in ms before now (keep it above the delivery policy's retry span). Default 1 h. */
  maxMessageAgeMs?: number;
  /** How far a `Timestamp` may be ahead of this host's clock. Default 5 min. */
  maxClockSkewMs?: number;
  /** Bounds on certificate downloads; see {@link SnsCertificateOptions}. */
  certificates?: SnsCertificateOptions;
  /** Clock for the Timestamp window, certificate validity and the caches. Default `Date.now`. */
  now?: () => number;
}

export const DEFAULT_SNS_MAX_MESSAGE_AGE_MS = 3600_000;
export const DEFAULT_SNS_MAX_CLOCK_SKEW_MS = 5 * 60_000;

const positiveInt = z.number().int().positive();
const limitsSchema = z.object({
  maxMessageAgeMs: positiveInt.optional(),
  maxClockSkewMs: z.number().int().min(0).optional(),
  certificates: z
    .object(
      Object.fromEntries(
        Object.keys(DEFAULT_SNS_CERTIFICATE_OPTIONS).map((key) => [key, positiveInt.optional()]),
      ),
    )
    .optional(),
});

const snsMessageSchema = z
  .object({
    Type: z.enum(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']),
    MessageId: z.string().min(1).max(256),
    TopicArn: z.string().min(1).max(1024),
    Message: z.string(),
    Timestamp: z.iso
      .datetime({ offset: true, error: 'Timestamp must be an ISO 8601 date-time' })
      .refine((value) => Number.isFinite(Date.parse(value)), 'Timestamp must be an ISO 8601 date-time'),
    SignatureVersion: z.string(),
    Signature: z.string().min(1),
    SigningCertURL: z.string().min(1),
    Subject: z.string().nullable().optional(),
    Token: z.string().optional(),
    SubscribeURL: z.string().optional(),
    UnsubscribeURL: z.string().optional(),
  })
  .refine((message) => message.Type === 'Notification' || (message.Token && message.SubscribeURL), {
    message: 'confirmations need Token and SubscribeURL',
  });

/** The canonical string SNS signs: `name\nvalue\n` for each signed field, in this order. */
export function snsStringToSign(message: SnsMessage): string {
  const fields: Array<keyof SnsMessage> =
    message.Type === 'Notification'
      ? [
          'Message',
          'MessageId',
          ...(message.Subject != null ? (['Subject'] as const) : []),
          'Timestamp',
          'TopicArn',
          'Type',
        ]
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return fields.map((field) => `${field}\n${String(message[field])}\n`).join('');
}

/**
 * Verifies SNS HTTP deliveries (SignatureVersion 1: SHA1, 2: SHA256) against the signing
 * certificate, which must come over https from an SNS host; rejects topics not on the allowlist
 * and Timestamps outside [now - maxMessageAgeMs, now + maxClockSkewMs]. Certificate downloads
 * are bounded and cached ({@link SnsCertificateOptions}).
 */
export class SnsSignatureVerifier {
  private readonly logger = new Logger(SnsSignatureVerifier.name);
  private readonly topics: ReadonlySet<string>;
  private readonly hostPattern: RegExp;
  private readonly httpGet: SnsHttpGet;
  private readonly maxMessageAgeMs: number;
  private readonly maxClockSkewMs: number;
  private readonly now: () => number;
  private readonly certificates: SnsCertificateStore;
  private readonly confirmLimits: { timeoutMs: number; maxBytes: number };

  constructor(options: SnsVerifierOptions) {
    const limits = limitsSchema.safeParse(options);
    if (!limits.success) {
      throw new Error(
        `Invalid SnsSignatureVerifier options: ${limits.error.issues
          .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
          .join('; ')}`,
      );
    }
    this.topics = new Set(options.topicArns);
    this.hostPattern = options.hostPattern ?? DEFAULT_SNS_HOST_PATTERN;
    this.httpGet = options.httpGet ?? fetchText;
    this.maxMessageAgeMs = options.maxMessageAgeMs ?? DEFAULT_SNS_MAX_MESSAGE_AGE_MS;
    this.maxClockSkewMs = options.maxClockSkewMs ?? DEFAULT_SNS_MAX_CLOCK_SKEW_MS;
    this.now = options.now ?? Date.now;
    this.certificates = new SnsCertificateStore(this.httpGet, options.certificates, this.now);
    this.confirmLimits = { ...DEFAULT_SNS_CERTIFICATE_OPTIONS, ...options.certificates };
  }

  /** Resolves the message when it is genuine; throws {@link SnsVerificationError} otherwise. */
  async verify(body: unknown): Promise<SnsMessage> {
    const parsed = snsMessageSchema.safeParse(body);
    if (!parsed.success)
      throw new SnsVerificationError('malformed', parsed.error.issues.map((i) => i.message).join('; '));
    const message = parsed.data as SnsMessage;
    if (!this.topics.has(message.TopicArn))
      throw new SnsVerificationError('topic-not-allowed', message.TopicArn);
    // Timestamp is signed, so checking it before the signature only saves a certificate download.
    this.checkTimestamp(message.Timestamp);

    const algorithm = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' }[message.SignatureVersion];
    if (!algorithm) throw new SnsVerificationError('unsupported-signature-version', message.SignatureVersion);
    const certificateUrl = this.checkUrl(message.SigningCertURL, 'certificate-url');
    const certificate = await this.certificates.get(certificateUrl);
    const now = this.now();
    if (Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now) {
      throw new SnsVerificationError('certificate', 'signing certificate is not currently valid');
    }

    const valid = createVerify(algorithm)
      .update(snsStringToSign(message), 'utf8')
      .verify(certificate.publicKey, message.Signature, 'base64');
    if (!valid) throw new SnsVerificationError('signature', `bad signature on ${message.MessageId}`);
    return message;
  }

  /** Confirms a verified SubscriptionConfirmation by GETting its SubscribeURL (https, SNS host, allowed topic). */
  async confirmSubscription(message: SnsMessage): Promise<void> {
    if (message.Type !== 'SubscriptionConfirmation' || !message.SubscribeURL) {
      throw new SnsVerificationError('malformed', 'not a SubscriptionConfirmation');
    }
    if (!this.topics.has(message.TopicArn))
      throw new SnsVerificationError('topic-not-allowed', message.TopicArn);
    const url = this.checkUrl(message.SubscribeURL, 'subscribe-url');
    await boundedGet(this.httpGet, url, this.confirmLimits);
    this.logger.log({ msg: 'SNS subscription confirmed', topicArn: message.TopicArn });
  }

  private checkTimestamp(timestamp: string): void {
    const ageMs = this.now() - Date.parse(timestamp);
    if (ageMs > this.maxMessageAgeMs) {
      throw new SnsVerificationError(
        'stale',
        `Timestamp ${timestamp} is ${Math.round(ageMs / 1000)} s old, more than ${this.maxMessageAgeMs / 1000} s`,
      );
    }
    if (-ageMs > this.maxClockSkewMs) {
      throw new SnsVerificationError(
        'future',
        `Timestamp ${timestamp} is ${Math.round(-ageMs / 1000)} s ahead, more than ${this.maxClockSkewMs / 1000} s`,
      );
    }
  }

  private checkUrl(value: string, reason: 'certificate-url' | 'subscribe-url'): URL {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new SnsVerificationError(reason, 'not a URL');
    }
    if (url.protocol !== 'https:') throw new SnsVerificationError(reason, `${url.protocol} is not https`);
    if (url.username || url.password || url.port)
      throw new SnsVerificationError(reason, 'credentials or port in URL');
    if (!this.hostPattern.test(url.hostname))
      throw new SnsVerificationError(reason, `host ${url.hostname} is not an SNS host`);
    if (reason === 'certificate-url' && !url.pathname.endsWith('.pem')) {
      throw new SnsVerificationError(reason, 'certificate URL does not name a .pem file');
    }
    // SNS certificate URLs carry neither; allowing them would let forged posts name one real
    // certificate under endless cache keys (evicting the genuine entry) at one download each.
    if (reason === 'certificate-url' && /[?#]/.test(value))
      throw new SnsVerificationError(reason, 'certificate URL has a query or fragment');
    return url;
  }
}
