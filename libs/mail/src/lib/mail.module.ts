import { Module, Provider } from '@nestjs/common';
import { AdminErrorFilter } from './admin/admin-error.filter';
import { AdminErrorReporter } from './admin/admin-error.reporter';
import { MailDispatcher } from './ledger/mail.dispatcher';
import { MailLedgerRepository } from './ledger/mail-ledger.repository';
import { MailLedgerService } from './ledger/mail-ledger.service';
import { ConfigurableMailModule, MAIL_MODULE_OPTIONS } from './mail.module-definition';
import { MAIL_OPTIONS, MAIL_SES_CLIENT, resolveMailOptions } from './mail.options';
import { MailService } from './mail.service';
import { MailRateLimiter } from './rate-limit/mail-rate.limiter';
import { createSesClient, SesTransport } from './ses/ses.transport';
import { SesFeedbackService } from './sns/ses-feedback.service';
import { MailSuppressionService } from './suppression/mail-suppression.service';

const services: Provider[] = [
  { provide: MAIL_OPTIONS, inject: [MAIL_MODULE_OPTIONS], useFactory: resolveMailOptions },
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
 * error mail. `forRoot(options)` or `forRootAsync({ useFactory | useClass | useExisting })`; global
 * unless `isGlobal: false`. Needs the app's TypeORM DataSource (with `MAIL_ENTITIES`/`MAIL_MIGRATIONS`).
 * Options are validated once, at boot.
 */
@Module({ providers: services, exports: exported })
export class MailModule extends ConfigurableMailModule {}
