import { GetAccountCommand, SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { MailHeader } from '../headers/mail-message.builder';
import { MAIL_OPTIONS, MAIL_SES_CLIENT, type ResolvedMailOptions } from '../mail.options';

/** One email as the transport sends it. */
export interface TransportMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html?: string;
  headers: MailHeader[];
}

/** Thrown when an SES call reached its deadline; the call was aborted (classified `ambiguous`). */
export class SesDeadlineError extends Error {
  constructor(
    readonly operation: string,
    readonly deadlineMs: number,
  ) {
    super(`SES ${operation} got no answer within its ${deadlineMs} ms deadline; the call was aborted`);
    this.name = 'TimeoutError';
  }
}

/** Creates the SESv2Client for {@link MailModule} when the app passed config rather than a client. */
export function createSesClient(options: ResolvedMailOptions): SESv2Client {
  if ('client' in options.ses) return options.ses.client;
  return new SESv2Client({
    region: options.ses.region,
    endpoint: options.ses.endpoint,
    credentials: options.ses.credentials,
    // The ledger, not the SDK, decides about retries: an SDK retry after a timeout can duplicate an email.
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: options.sesRequestTimeoutMs,
      // Without it this handler version only logs a warning when requestTimeout passes.
      throwOnRequestTimeout: true,
      connectionTimeout: Math.min(5_000, options.sesRequestTimeoutMs),
    },
  });
}

/**
 * SES v2 `SendEmail` with Simple content (text, optional HTML) and custom headers. Simple content
 * carries headers in this SDK version, so Raw MIME is never needed.
 */
@Injectable()
export class SesTransport implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SesTransport.name);

  constructor(
    @Inject(MAIL_SES_CLIENT) private readonly client: SESv2Client,
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!('client' in this.options.ses)) return;
    const maxAttempts = await this.client.config.maxAttempts();
    if (maxAttempts > 1) {
      this.logger.warn({
        msg: 'SESv2Client retries SendEmail itself; create it with maxAttempts: 1 to avoid duplicate emails',
        maxAttempts,
      });
    }
  }

  onApplicationShutdown(): void {
    if (!('client' in this.options.ses)) this.client.destroy();
  }

  /**
   * Sends one email; resolves SES's MessageId. Throws the SDK error as is (see `classifySesError`),
   * or {@link SesDeadlineError} once `deadlineMs` (default: the SES request timeout) has passed; the
   * call is aborted then. A client whose HTTP handler ignores the abort may still get SES's answer
   * later: `onLateAnswer` gets its MessageId then (proof SES accepted the email).
   */
  async send(
    mail: TransportMail,
    deadlineMs = this.options.sesRequestTimeoutMs,
    onLateAnswer?: (sesMessageId: string) => void,
  ): Promise<string> {
    const key = mail.headers.find((header) => header.name.toLowerCase() === 'x-once-key')?.value;
    const command = new SendEmailCommand({
      FromEmailAddress: mail.from,
      Destination: { ToAddresses: mail.to },
      ConfigurationSetName: this.options.configurationSetName,
      Content: {
        Simple: {
          Subject: { Data: mail.subject, Charset: 'UTF-8' },
          Body: {
            Text: { Data: mail.text, Charset: 'UTF-8' },
            ...(mail.html ? { Html: { Data: mail.html, Charset: 'UTF-8' } } : {}),
          },
          Headers: mail.headers.map((header) => ({ Name: header.name, Value: header.value })),
        },
      },
    });
    const output = await this.withDeadline(
      'SendEmail',
      deadlineMs,
      key,
      (abortSignal) => this.client.send(command, { abortSignal }),
      (late) => {
        if (late.MessageId) onLateAnswer?.(late.MessageId);
      },
    );
    if (!output.MessageId) throw new Error('SES accepted the email but returned no MessageId');
    return output.MessageId;
  }

  /** The account's `SendQuota.MaxSendRate` (emails per second), or undefined when SES does not say. */
  async getMaxSendRate(): Promise<number | undefined> {
    const account = await this.withDeadline(
      'GetAccount',
      this.options.sesRequestTimeoutMs,
      undefined,
      (abortSignal) => this.client.send(new GetAccountCommand({}), { abortSignal }),
    );
    const rate = account.SendQuota?.MaxSendRate;
    return typeof rate === 'number' && rate > 0 ? rate : undefined;
  }

  /**
   * Runs one SDK call under a hard deadline, whatever client it is: at the deadline the signal
   * aborts the request (every SDK HTTP handler destroys the socket on abort) and the call rejects
   * with {@link SesDeadlineError} at once, even if a custom handler ignored the signal. Such a
   * handler's late answer is logged and handed to `onLate`.
   */
  private withDeadline<T>(
    operation: string,
    deadlineMs: number,
    idempotencyKey: string | undefined,
    call: (abortSignal: AbortSignal) => Promise<T>,
    onLate?: (output: T) => void,
  ): Promise<T> {
    const deadlineError = new SesDeadlineError(operation, deadlineMs);
    if (deadlineMs <= 0) return Promise.reject(deadlineError);
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const pending = call(controller.signal);
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        expired = true;
        controller.abort(deadlineError);
        reject(deadlineError);
      }, deadlineMs);
    });
    pending.then(
      (output) => {
        if (!expired) return;
        this.logger.error({
          msg: 'SES answered after the deadline (the client ignored the abort)',
          idempotencyKey,
          operation,
          messageId: (output as { MessageId?: string } | undefined)?.MessageId,
        });
        try {
          onLate?.(output);
        } catch (error) {
          this.logger.error({
            msg: 'handling a late SES answer failed',
            idempotencyKey,
            operation,
            error: (error as Error).message,
          });
        }
      },
      () => undefined,
    );
    return Promise.race([pending, deadline]).finally(() => clearTimeout(timer));
  }
}
