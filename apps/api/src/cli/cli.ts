import 'reflect-metadata';
import {
  createDataSource,
  databaseEnvSchema,
  loadConfig,
  ONCE_ENTITIES,
  ONCE_MIGRATIONS,
  seedUsers,
} from '@once/platform';
import { z } from 'zod';

const USAGE = 'usage: cli <migrate | revert | seed [count]>';

/** Database commands: `migrate` applies pending migrations, `revert` undoes the last, `seed N` adds demo users. */
export async function runCli(argv: readonly string[], env: Record<string, string | undefined> = process.env) {
  const [command, arg] = argv;
  const config = loadConfig(
    'cli',
    databaseEnvSchema.extend({ SEED_USERS: z.coerce.number().int().min(0).default(25) }),
    env,
  );
  const dataSource = createDataSource({
    url: config.DATABASE_URL,
    poolSize: 2,
    migrateOnBoot: false,
    entities: ONCE_ENTITIES,
    migrations: ONCE_MIGRATIONS,
    applicationName: 'once-cli',
  });
  await dataSource.initialize();
  try {
    switch (command) {
      case 'migrate': {
        const applied = await dataSource.runMigrations({ transaction: 'each' });
        return `migrations applied: ${applied.length ? applied.map((m) => m.name).join(', ') : 'none pending'}`;
      }
      case 'revert':
        await dataSource.undoLastMigration({ transaction: 'each' });
        return 'reverted the last migration';
      case 'seed': {
        const count = arg === undefined ? config.SEED_USERS : Number(arg);
        if (!Number.isInteger(count) || count < 0)
          throw new Error(`seed count must be a whole number, got "${arg}"`);
        return `users in database: ${await seedUsers(dataSource, count)}`;
      }
      default:
        throw new Error(USAGE);
    }
  } finally {
    await dataSource.destroy();
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (message) => console.log(message),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
