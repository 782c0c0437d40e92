import { CreateUsers1763900000000 } from './migrations/1763900000000-create-users.migration';
import { User } from '../users/user.entity';

/** Entities and migrations owned by the platform lib. */
export const PLATFORM_ENTITIES = [User];
export const PLATFORM_MIGRATIONS = [CreateUsers1763900000000];
