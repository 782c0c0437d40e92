import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LinkBuilder } from './link.builder';
import { LinkVerifier } from './link.verifier';
import { TrackingModule } from './tracking.module';
import { ResolvedTrackingOptions, TRACKING_OPTIONS } from './tracking.options';

const SECRET = 'module-secret-0123456789abcdef01234';

@Injectable()
class SiteSettings {
  readonly baseUrl = 'https://site.example/';
}

@Module({ providers: [SiteSettings], exports: [SiteSettings] })
class SettingsModule {}

describe('TrackingModule', () => {
  it('forRoot provides a builder and a verifier that agree', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [TrackingModule.forRoot({ baseUrl: 'https://site.example', secrets: [SECRET] })],
    }).compile();
    const link = moduleRef.get(LinkBuilder).build('/updates/x/', { campaign: 'Daily_Notification' });
    expect(moduleRef.get(LinkVerifier).verify(link)).toMatchObject({ ok: true });
    expect(moduleRef.get<ResolvedTrackingOptions>(TRACKING_OPTIONS).trackingPath).toBe('/daily/');
    await moduleRef.close();
  });

  it('forRootAsync resolves options from injected providers', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TrackingModule.forRootAsync({
          imports: [SettingsModule],
          inject: [SiteSettings],
          useFactory: async (settings: SiteSettings) => ({ baseUrl: settings.baseUrl, secrets: [SECRET] }),
        }),
      ],
    }).compile();
    expect(moduleRef.get(LinkBuilder).build('/a/', { campaign: 'c' })).toMatch(
      /^https:\/\/site\.example\/daily\/\?\/a\/&c=c&s=/,
    );
    await moduleRef.close();
  });

  it('fails at boot on invalid options', async () => {
    const boot = Test.createTestingModule({
      imports: [
        TrackingModule.forRootAsync({
          useFactory: () => ({ baseUrl: 'https://site.example', secrets: ['short'] }),
        }),
      ],
    }).compile();
    await expect(boot).rejects.toThrow('secrets.0: each secret needs at least 32 characters');
    expect(() => TrackingModule.forRoot({ baseUrl: 'nope', secrets: [SECRET] })).toThrow(/baseUrl/);
  });
});
