// A Nest 11 app that installed only @once/dedup (and ioredis): IdempotencyService.run on the Redis
// store, three calls with one key. Prints one `RESULT {...}` line.
import 'reflect-metadata';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DedupModule, IdempotencyService } from '@once/dedup';
import Redis from 'ioredis';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const redis = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: 1 });

@Module({
  imports: [
    DedupModule.forRoot({
      store: 'redis',
      redis,
      keyPrefix: env('KEY_PREFIX'),
    }),
  ],
})
class AppModule {}

function resolvable(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  const idempotency = app.get(IdempotencyService);
  let effects = 0;
  const answers: unknown[] = [];
  const effect = () => ({ invoice: 42, effect: ++effects });
  // DEDUP_ENABLED=false (the runner's `--sabotage=no-dedup`) calls the function bare, as if undecorated.
  const bare = process.env.DEDUP_ENABLED === 'false';
  for (let call = 0; call < 3; call++) {
    answers.push(bare ? effect() : await idempotency.run('invoice-42', effect, { scope: 'invoices' }));
  }
  const result = {
    calls: answers.length,
    effects,
    answers,
    resolvable: {
      typeorm: resolvable('typeorm'),
      '@nestjs/typeorm': resolvable('@nestjs/typeorm'),
      '@ssut/nestjs-sqs': resolvable('@ssut/nestjs-sqs'),
      '@aws-sdk/client-sqs': resolvable('@aws-sdk/client-sqs'),
    },
    loaded: {
      typeorm: Object.keys(require.cache).some((file) => file.includes('/node_modules/typeorm/')),
    },
  };
  await app.close();
  redis.disconnect();
  console.log(`RESULT ${JSON.stringify(result)}`);
}

main().catch((error: unknown) => {
  new Logger('redis-only').error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
