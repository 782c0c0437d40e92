import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { DedupModuleExtras, DedupModuleOptions, DedupOptionsFactory } from './dedup.options';

/** Token of the options as the app passed them; DEDUP_OPTIONS holds them validated. */
export const DEDUP_MODULE_OPTIONS = Symbol('DEDUP_MODULE_OPTIONS');

export const { ConfigurableModuleClass: ConfigurableDedupModule } =
  new ConfigurableModuleBuilder<DedupModuleOptions>({
    optionsInjectionToken: DEDUP_MODULE_OPTIONS,
  })
    .setClassMethodName('forRoot')
    .setFactoryMethodName('createDedupOptions' satisfies keyof DedupOptionsFactory)
    .setExtras<DedupModuleExtras>({ isGlobal: true }, (definition, extras) => ({
      ...definition,
      global: extras.isGlobal,
    }))
    .build();
