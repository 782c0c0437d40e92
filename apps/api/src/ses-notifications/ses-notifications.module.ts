import { DynamicModule, Logger, Module } from '@nestjs/common';
import { SnsSignatureVerifier, type SnsVerifierOptions } from '@once/mail';
import { SesNotificationsController } from './ses-notifications.controller';

/** Options of {@link SesNotificationsModule}: the SNS topics SES publishes to, and test hooks. */
export type SesNotificationsModuleOptions = SnsVerifierOptions;

/**
 * `POST /webhooks/ses`: SES feedback through SNS. Needs `MailModule` (global) and the app's
 * TypeORM DataSource with `MAIL_ENTITIES`/`MAIL_MIGRATIONS`. No body-parser setup is required.
 */
@Module({})
export class SesNotificationsModule {
  static forRoot(options: SesNotificationsModuleOptions): DynamicModule {
    if (options.topicArns.length === 0) {
      new Logger(SesNotificationsModule.name).warn({
        msg: 'no SNS topic allowed: every SES notification will be rejected',
      });
    }
    return {
      module: SesNotificationsModule,
      controllers: [SesNotificationsController],
      providers: [{ provide: SnsSignatureVerifier, useValue: new SnsSignatureVerifier(options) }],
    };
  }
}
