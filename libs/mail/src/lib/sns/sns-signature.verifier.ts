import { X509Certificate, createVerify } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { z } from 'zod';

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

export type SnsRejectionReason =
  | 'malformed'
  | 'topic-not-allowed'
  | 'certificate-url'
  | 'certificate'
  | 'unsupported-signature-version'
  | 'signature'
  | 'subscribe-url';

/** The message is not a genuine SNS delivery for an allowed topic. */
export class SnsVerificationError extends Error {
  constructor(
    readonly reason: SnsRejectionReason,
    detail: string,
  ) {
    super(`SNS message rejected (${reason}): ${detail}`);
    this.name = 'SnsVerificationError';
  }
}

export interface SnsVerifierOptions {
  /** TopicArns accepted (exact match). Anything else is rejected before any certificate is fetched. */
  topicArns: string[];
  /** Hosts allowed for SigningCertURL and SubscribeURL. Default {@link DEFAULT_SNS_HOST_PATTERN}; https is always required. */
  hostPattern?: RegExp;
  /** GETs a URL and returns its body; used for the certificate and to confirm subscriptions. Default: `fetch`, 5 s timeout, no redirects. */
  httpGet?: (url: URL) => Promise<string>;
}

const snsMessageSchema = z
  .object({
    Type: z.enum(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']),
    MessageId: z.string().min(1).max(256),
    TopicArn: z.string().min(1).max(1024),
    Message: z.string(),
    Timestamp: z.string().min(1),
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

const MAX_CERTIFICATES = 20;
const MAX_BODY_BYTES = 64 * 1024;

async function defaultHttpGet(url: URL): Promise<string> {
  const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url.host}${url.pathname} answered ${response.status}`);
  const body = await response.text();
  if (body.length > MAX_BODY_BYTES) throw new Error(`GET ${url.host}${url.pathname} answered too much`);
  return body;
}

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
 * certificate, which must come over https from an SNS host; rejects topics not on the allowlist.
 * Certificates are cached per URL.
 */
export class SnsSignatureVerifier {
  private readonly logger = new Logger(SnsSignatureVerifier.name);
  private readonly topics: ReadonlySet<string>;
  private readonly hostPattern: RegExp;
  private readonly httpGet: (url: URL) => Promise<string>;
  private readonly certificates = new Map<string, Promise<X509Certificate>>();

  constructor(options: SnsVerifierOptions) {
    this.topics = new Set(options.topicArns);
    this.hostPattern = options.hostPattern ?? DEFAULT_SNS_HOST_PATTERN;
    this.httpGet = options.httpGet ?? defaultHttpGet;
  }

  /** Resolves the message when it is genuine; throws {@link SnsVerificationError} otherwise. */
  async verify(body: unknown): Promise<SnsMessage> {
    const parsed = snsMessageSchema.safeParse(body);
    if (!parsed.success)
      throw new SnsVerificationError('malformed', parsed.error.issues.map((i) => i.message).join('; '));
    const message = parsed.data as SnsMessage;
    if (!this.topics.has(message.TopicArn))
      throw new SnsVerificationError('topic-not-allowed', message.TopicArn);

    const algorithm = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' }[message.SignatureVersion];
    if (!algorithm) throw new SnsVerificationError('unsupported-signature-version', message.SignatureVersion);
    const certificateUrl = this.checkUrl(message.SigningCertURL, 'certificate-url');
    const certificate = await this.certificate(certificateUrl);

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
    await this.httpGet(url);
    this.logger.log({ msg: 'SNS subscription confirmed', topicArn: message.TopicArn });
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
    return url;
  }

  private certificate(url: URL): Promise<X509Certificate> {
    const key = url.toString();
    let pending = this.certificates.get(key);
    if (!pending) {
      pending = this.httpGet(url).then((pem) => new X509Certificate(pem));
      this.certificates.set(key, pending);
      if (this.certificates.size > MAX_CERTIFICATES) {
        const oldest = this.certificates.keys().next().value;
        if (oldest !== undefined) this.certificates.delete(oldest);
      }
      pending.catch(() => this.certificates.delete(key));
    }
    return pending.then(
      (certificate) => {
        const now = Date.now();
        if (Date.parse(certificate.validFrom) > now || Date.parse(certificate.validTo) < now) {
          throw new SnsVerificationError('certificate', 'signing certificate is not currently valid');
        }
        return certificate;
      },
      (error: unknown) => {
        throw new SnsVerificationError(
          'certificate',
          `cannot load ${url.hostname}${url.pathname}: ${(error as Error).message}`,
        );
      },
    );
  }
}
