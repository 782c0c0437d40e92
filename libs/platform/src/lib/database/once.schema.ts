import { DEDUP_ENTITIES, DEDUP_MIGRATIONS } from '@once/dedup/typeorm';
import { MAIL_ENTITIES, MAIL_MIGRATIONS } from '@once/mail';
import { TRACKING_ENTITIES, TRACKING_MIGRATIONS } from '@once/tracking';
import { PLATFORM_ENTITIES, PLATFORM_MIGRATIONS } from './platform.migrations';

/** Every entity of the platform's database, for the apps' DataSources. */
export const ONCE_ENTITIES = [
  ...PLATFORM_ENTITIES,
  ...DEDUP_ENTITIES,
  ...MAIL_ENTITIES,
  ...TRACKING_ENTITIES,
];

/** Every migration, in the order the migrate command applies them (TypeORM sorts by timestamp). */
export const ONCE_MIGRATIONS = [
  ...PLATFORM_MIGRATIONS,
  ...DEDUP_MIGRATIONS,
  ...MAIL_MIGRATIONS,
  ...TRACKING_MIGRATIONS,
];
