import { DynamicModule, Module, Provider } from '@nestjs/common';
import { AdminErrorFilter } from './admin/admin-error.filter';
import { AdminErrorReporter } from './admin/admin-error.reporter';
import { MailDispatcher } from './ledger/mail.dispatcher';
import { MailLedgerRepository } from './ledger/mail-ledger.repository';
import { MailLedgerService } from './ledger/mail-ledger.service';
import {
  MAIL_OPTIONS,
  MAIL_SES_CLIENT,
  type MailModuleAsyncOptions,
  type MailModuleOptions,
  type ResolvedMailOptions,
  resolveMailOptions,
} from './mail.options';
import { MailService } from './mail.service';
import { MailRateLimiter } from './rate-limit/mail-rate.limiter';
import { createSesClient, SesTransport } from './ses/ses.transport';
import { SesFeedbackService } from './sns/ses-feedback.service';
import { MailSuppressionService } from './suppression/mail-suppression.service';

const services: Provider[] = [
  { provide: MAIL_SES_CLIENT, useFactory: createSesClient, inject: [MAIL_OPTIONS] },
  SesTransport,
  MailRateLimiter,
  MailLedgerRepository,
  MailDispatcher,
  MailService,
  MailLedgerService,
  MailSuppressionService,
  SesFeedbackService,
  AdminErrorReporter,
  AdminErrorFilter,
];

const exported = [
  MailService,
  MailLedgerService,
  MailSuppressionService,
  SesFeedbackService,
  AdminErrorReporter,
  AdminErrorFilter,
  MailRateLimiter,
];

/**
 * Exactly-once email over SES v2: the send ledger, suppression list, shared rate limit and admin
 * error mail. Global; needs the app's TypeORM DataSource (with `MAIL_ENTITIES`/`MAIL_MIGRATIONS`).
 */
@Module({})
export class MailModule {
  static forRoot(options: MailModuleOptions): DynamicModule {
    return {
      module: MailModule,
      global: true,
      providers: [
        { provide: MAIL_OPTIONS, useFactory: (): ResolvedMailOptions => resolveMailOptions(options) },
        ...services,
      ],
      exports: exported,
    };
  }

  static forRootAsync(options: MailModuleAsyncOptions): DynamicModule {
    return {
      module: MailModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        {
          provide: MAIL_OPTIONS,
          useFactory: async (...args: unknown[]): Promise<ResolvedMailOptions> =>
            resolveMailOptions(await options.useFactory(...args)),
          inject: options.inject ?? [],
        },
        ...services,
      ],
      exports: exported,
    };
  }
}
