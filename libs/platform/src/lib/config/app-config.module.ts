import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';

/** Injection token of an app's validated, typed configuration object. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * Makes an already validated config object available app-wide, both under {@link APP_CONFIG}
 * and through `@nestjs/config`'s `ConfigService`. Nothing is read from `process.env` here.
 */
@Module({})
export class AppConfigModule {
  static forRoot<T extends Record<string, unknown>>(config: T): DynamicModule {
    return {
      module: AppConfigModule,
      global: true,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          ignoreEnvVars: true,
          validatePredefined: false,
          load: [() => config],
        }),
      ],
      providers: [{ provide: APP_CONFIG, useValue: config }],
      exports: [APP_CONFIG, ConfigModule],
    };
  }
}
