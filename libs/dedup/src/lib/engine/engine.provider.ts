import type { Provider } from '@nestjs/common';
import { DedupEngine } from './idempotency.engine';

/** Injection token of the {@link IdempotencyEngine} (IdempotencyService and the `@Idempotent` runner use it). */
export const IDEMPOTENCY_ENGINE = Symbol('IDEMPOTENCY_ENGINE');

export const IDEMPOTENCY_ENGINE_PROVIDER: Provider = { provide: IDEMPOTENCY_ENGINE, useClass: DedupEngine };
