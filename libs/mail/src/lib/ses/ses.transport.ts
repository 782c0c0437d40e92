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

/** Creates the SESv2Client for {@link MailModule} when the app passed config rather than a client. */
export function createSesClient(options: ResolvedMailOptions): SESv2Client {
  if ('client' in options.ses) return options.ses.client;
  return new SESv2Client({
    region: options.ses.region,
    endpoint: options.ses.endpoint,
    credentials: options.ses.credentials,
    // The ledger, not the SDK, decides about retries: an SDK retry after a timeout can duplicate an email.
    maxAttempts: 1,
    requestHandler: { requestTimeout: options.sesRequestTimeoutMs, connectionTimeout: 5_000 },
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

  /** Sends one email; resolves SES's MessageId. Throws the SDK error as is (see `classifySesError`). */
  async send(mail: TransportMail): Promise<string> {
    const output = await this.client.send(
      new SendEmailCommand({
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
      }),
    );
    if (!output.MessageId) throw new Error('SES accepted the email but returned no MessageId');
    return output.MessageId;
  }

  /** The account's `SendQuota.MaxSendRate` (emails per second), or undefined when SES does not say. */
  async getMaxSendRate(): Promise<number | undefined> {
    const account = await this.client.send(new GetAccountCommand({}));
    const rate = account.SendQuota?.MaxSendRate;
    return typeof rate === 'number' && rate > 0 ? rate : undefined;
  }
}
