import type { DynamicModule } from '@nestjs/common';
import { loadConfig } from './config/config.loader';
import {
  awsEnvSchema,
  baseEnvSchema,
  databaseEnvSchema,
  dedupEnvSchema,
  mailEnvSchema,
  queuesEnvSchema,
  redisEnvSchema,
} from './config/config.schemas';
import { PlatformDedupModule } from './dedup/platform-dedup.module';
import { PlatformMailModule } from './mail/platform-mail.module';
import { PlatformModule } from './platform.module';

const config = loadConfig(
  'test',
  baseEnvSchema
    .extend(databaseEnvSchema.shape)
    .extend(redisEnvSchema.shape)
    .extend(awsEnvSchema.shape)
    .extend(queuesEnvSchema.shape)
    .extend(mailEnvSchema.shape)
    .extend(dedupEnvSchema.shape),
  { NODE_ENV: 'test' },
);

const importedModules = (options: { dedup?: boolean; mail?: boolean }) =>
  (
    PlatformModule.forRoot({ appName: 'reports', config, health: [], probeQueue: 'jobs', ...options })
      .imports as DynamicModule[]
  ).map((imported) => imported.module);

describe('PlatformModule', () => {
  it('adds dedup and mail only for the apps that opt in', () => {
    expect(importedModules({})).not.toContain(PlatformDedupModule);
    expect(importedModules({})).not.toContain(PlatformMailModule);
    expect(importedModules({ dedup: true })).toContain(PlatformDedupModule);
    expect(importedModules({ dedup: true })).not.toContain(PlatformMailModule);
    expect(importedModules({ dedup: true, mail: true })).toEqual(
      expect.arrayContaining([PlatformDedupModule, PlatformMailModule]),
    );
  });
});
