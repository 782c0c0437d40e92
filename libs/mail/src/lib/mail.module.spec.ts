import { type DynamicModule, Global, Injectable, Module, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken } from '@nestjs/typeorm';
import Redis from 'ioredis';
import { MailModule } from './mail.module';
import {
  MAIL_OPTIONS,
  type MailModuleOptions,
  type MailOptionsFactory,
  type ResolvedMailOptions,
} from './mail.options';
import { MailService } from './mail.service';

const redis = new Redis({ lazyConnect: true });
const clock = () => new Date(0);
const OPTIONS: MailModuleOptions = {
  ses: { region: 'eu-west-1', endpoint: 'http://127.0.0.1:1' },
  redis,
  redisKeyPrefix: 'app:mail:',
  defaultFrom: 'Once <digest@once.example>',
  rateLimit: { maxSendRate: 5 },
  clock,
};

/** The app's DataSource, never queried here: compiling the module only builds its providers. */
@Global()
@Module({ providers: [{ provide: getDataSourceToken(), useValue: {} }], exports: [getDataSourceToken()] })
class FakeDatabaseModule {}

@Injectable()
class MailConfig implements MailOptionsFactory {
  createMailOptions(): MailModuleOptions {
    return OPTIONS;
  }
}

@Module({ providers: [MailConfig], exports: [MailConfig] })
class MailConfigModule {}

@Injectable()
class Newsletter {
  constructor(readonly mail: MailService) {}
}

describe('MailModule', () => {
  afterAll(() => redis.disconnect());

  const boot = (...imports: Array<Type | DynamicModule>) =>
    Test.createTestingModule({ imports: [FakeDatabaseModule, ...imports] }).compile();

  it('forRoot and forRootAsync with useFactory, useClass and useExisting resolve the same options', async () => {
    const resolved: ResolvedMailOptions[] = [];
    for (const mail of [
      MailModule.forRoot(OPTIONS),
      MailModule.forRootAsync({ useFactory: async () => OPTIONS }),
      MailModule.forRootAsync({ useClass: MailConfig }),
      MailModule.forRootAsync({ imports: [MailConfigModule], useExisting: MailConfig }),
    ]) {
      const moduleRef = await boot(mail);
      resolved.push(moduleRef.get<ResolvedMailOptions>(MAIL_OPTIONS));
      await moduleRef.close();
    }
    expect(resolved[0]).toMatchObject({
      redisKeyPrefix: 'app:mail:',
      staleAfterMs: 20_000,
      rateLimit: { maxSendRate: 5, burst: 1 },
      clock,
      redis,
    });
    for (const other of resolved.slice(1)) expect(other).toEqual(resolved[0]);
  });

  it('is global by default: a provider of another module injects MailService', async () => {
    @Module({ providers: [Newsletter] })
    class NewsletterModule {}
    const moduleRef = await boot(MailModule.forRoot(OPTIONS), NewsletterModule);
    expect(moduleRef.get(Newsletter).mail).toBe(moduleRef.get(MailService));
    await moduleRef.close();
  });

  it('with isGlobal: false, only importing modules reach it', async () => {
    @Module({ providers: [Newsletter] })
    class Unrelated {}
    await expect(boot(MailModule.forRoot({ ...OPTIONS, isGlobal: false }), Unrelated)).rejects.toThrow(
      /can't resolve dependencies of the Newsletter/,
    );

    @Module({ imports: [MailModule.forRoot({ ...OPTIONS, isGlobal: false })], providers: [Newsletter] })
    class Importing {}
    const moduleRef = await boot(Importing);
    expect(moduleRef.get(Newsletter).mail).toBeInstanceOf(MailService);
    await moduleRef.close();
  });

  it('fails at boot on invalid options, naming the field', async () => {
    await expect(boot(MailModule.forRoot({ ...OPTIONS, defaultFrom: 'not an address' }))).rejects.toThrow(
      /Invalid MailModule options:\n {2}- defaultFrom: /,
    );
    await expect(
      boot(MailModule.forRootAsync({ useFactory: () => ({ ...OPTIONS, rateLimit: { burst: 0 } }) })),
    ).rejects.toThrow(/rateLimit\.burst: /);
  });
});
