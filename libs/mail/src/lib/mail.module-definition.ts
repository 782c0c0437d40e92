import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { MailModuleExtras, MailModuleOptions, MailOptionsFactory } from './mail.options';

/** Token of the options as the app passed them; MAIL_OPTIONS holds them validated. */
export const MAIL_MODULE_OPTIONS = Symbol('MAIL_MODULE_OPTIONS');

export const { ConfigurableModuleClass: ConfigurableMailModule } =
  new ConfigurableModuleBuilder<MailModuleOptions>({
    optionsInjectionToken: MAIL_MODULE_OPTIONS,
  })
    .setClassMethodName('forRoot')
    .setFactoryMethodName('createMailOptions' satisfies keyof MailOptionsFactory)
    .setExtras<MailModuleExtras>({ isGlobal: true }, (definition, extras) => ({
      ...definition,
      global: extras.isGlobal,
    }))
    .build();
