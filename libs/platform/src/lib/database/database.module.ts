import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions, MixedList } from 'typeorm';
import { DatabaseConnector } from './database.connector';

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  /** Run pending migrations at boot. Off in production: use the migrate command. */
  migrateOnBoot: boolean;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entities: MixedList<Function>;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  migrations: MixedList<Function>;
  /** Application name reported to Postgres (pg_stat_activity). */
  applicationName: string;
  /**
   * Boot without waiting for Postgres and connect in the background (see DatabaseConnector):
   * for an app that serves requests needing no database. Default false: boot fails after 3 tries.
   */
  connectInBackground?: boolean;
}

/** TypeORM DataSource options shared by the apps and the migrate command. Never `synchronize`. */
export function dataSourceOptions(options: DatabaseOptions): DataSourceOptions {
  return {
    type: 'postgres',
    url: options.url,
    entities: options.entities,
    migrations: options.migrations,
    migrationsRun: options.migrateOnBoot,
    migrationsTransactionMode: 'each',
    synchronize: false,
    applicationName: options.applicationName,
    extra: { max: options.poolSize },
  };
}

/** Creates (not initialises) a DataSource for commands outside Nest, such as migrate and seed. */
export function createDataSource(options: DatabaseOptions): DataSource {
  return new DataSource(dataSourceOptions(options));
}

/** Postgres through TypeORM for an app. */
@Module({})
export class DatabaseModule {
  static forRoot(options: DatabaseOptions): DynamicModule {
    if (options.connectInBackground) {
      return {
        module: DatabaseModule,
        global: true,
        imports: [
          TypeOrmModule.forRoot({
            ...dataSourceOptions(options),
            // A connect that hangs (a dropped route) fails, so the connector tries again.
            extra: { max: options.poolSize, connectionTimeoutMillis: 5000 },
            manualInitialization: true,
          }),
        ],
        providers: [DatabaseConnector],
        exports: [DatabaseConnector],
      };
    }
    return {
      module: DatabaseModule,
      imports: [TypeOrmModule.forRoot({ ...dataSourceOptions(options), retryAttempts: 3, retryDelay: 1000 })],
    };
  }
}
