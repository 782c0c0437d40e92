import type { Provider } from '@nestjs/common';
import { DedupMetrics } from './dedup-metrics.service';
import { IdempotencyService } from './idempotency.service';
import { SqsQueueOps } from './sqs/sqs-queue.ops';

/** What DedupModule provides besides its options. */
export const DEDUP_PROVIDERS: Provider[] = [DedupMetrics, SqsQueueOps, IdempotencyService];

/** What DedupModule exports to the app. */
export const DEDUP_EXPORTS = [IdempotencyService, DedupMetrics];
