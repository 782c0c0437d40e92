import { type DynamicModule, Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LinkBuilder } from './link.builder';
import { LinkVerifier } from './link.verifier';
import { TrackingModule } from './tracking.module';
import {
  type ResolvedTrackingOptions,
  TRACKING_OPTIONS,
  type TrackingOptions,
  type TrackingOptionsFactory,
  TrackingOptionsError,
} from './tracking.options';

const SECRET = 'module-secret-0123456789abcdef01234';

@Injectable()
class SiteSettings implements TrackingOptionsFactory {
  readonly baseUrl = 'https://site.example/';

  createTrackingOptions(): TrackingOptions {
    return { baseUrl: this.baseUrl, secrets: [SECRET], trackingPath: '/t/' };
  }
}

@Module({ providers: [SiteSettings], exports: [SiteSettings] })
class SettingsModule {}

@Injectable()
class Digest {
  constructor(readonly links: LinkBuilder) {}
}

describe('TrackingModule', () => {
  const boot = (tracking: DynamicModule, ...imports: Array<DynamicModule | typeof SettingsModule>) =>
    Test.createTestingModule({ imports: [tracking, ...imports] }).compile();

  it('forRoot provides a builder and a verifier that agree', async () => {
    const moduleRef = await boot(
      TrackingModule.forRoot({ baseUrl: 'https://site.example', secrets: [SECRET] }),
    );
    const link = moduleRef.get(LinkBuilder).build('/updates/x/', { campaign: 'Daily_Notification' });
    expect(moduleRef.get(LinkVerifier).verify(link)).toMatchObject({ ok: true });
    expect(moduleRef.get<ResolvedTrackingOptions>(TRACKING_OPTIONS).trackingPath).toBe('/daily/');
    await moduleRef.close();
  });

  it('forRoot and forRootAsync with useFactory, useClass and useExisting resolve the same options', async () => {
    const resolved: ResolvedTrackingOptions[] = [];
    for (const tracking of [
      TrackingModule.forRoot(new SiteSettings().createTrackingOptions()),
      TrackingModule.forRootAsync({
        imports: [SettingsModule],
        inject: [SiteSettings],
        useFactory: async (settings: SiteSettings) => ({
          baseUrl: settings.baseUrl,
          secrets: [SECRET],
          trackingPath: '/t/',
        }),
      }),
      TrackingModule.forRootAsync({ useClass: SiteSettings }),
      TrackingModule.forRootAsync({ imports: [SettingsModule], useExisting: SiteSettings }),
    ]) {
      const moduleRef = await boot(tracking);
      resolved.push(moduleRef.get<ResolvedTrackingOptions>(TRACKING_OPTIONS));
      expect(moduleRef.get(LinkBuilder).build('/a/', { campaign: 'c' })).toMatch(
        /^https:\/\/site\.example\/t\/\?\/a\/&c=c&s=/,
      );
      await moduleRef.close();
    }
    expect(resolved[0]).toMatchObject({ baseUrl: 'https://site.example', trackingPath: '/t/' });
    for (const other of resolved.slice(1)) expect(other).toEqual(resolved[0]);
  });

  it('is not global by default; isGlobal: true lets other modules inject the builder', async () => {
    @Module({ providers: [Digest] })
    class DigestModule {}
    const options = { baseUrl: 'https://site.example', secrets: [SECRET] };
    await expect(boot(TrackingModule.forRoot(options), DigestModule)).rejects.toThrow(
      /can't resolve dependencies of the Digest/,
    );

    const moduleRef = await boot(TrackingModule.forRoot({ ...options, isGlobal: true }), DigestModule);
    expect(moduleRef.get(Digest).links).toBe(moduleRef.get(LinkBuilder));
    await moduleRef.close();
  });

  it('fails at boot on invalid options, naming the field', async () => {
    const async = boot(
      TrackingModule.forRootAsync({
        useFactory: () => ({ baseUrl: 'https://site.example', secrets: ['short'] }),
      }),
    );
    await expect(async).rejects.toThrow(TrackingOptionsError);
    await expect(async).rejects.toThrow('secrets.0: each secret needs at least 32 characters');
    await expect(boot(TrackingModule.forRoot({ baseUrl: 'nope', secrets: [SECRET] }))).rejects.toThrow(
      /baseUrl: /,
    );
  });
});
