import type { SQSClient } from '@aws-sdk/client-sqs';

/** A queue as the adapter addresses it: the client to call it with (its endpoint, its account) and its URL. */
export interface SqsQueueRef {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
}

/** SQS batch calls take 10 entries at most. */
export const SQS_BATCH_SIZE = 10;

/** `items` in runs of `size` (the last one shorter). */
export const chunks = <T>(items: readonly T[], size = SQS_BATCH_SIZE): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, i * size + size));

/** FIFO queue URLs end in `.fifo`. */
export const isFifoQueue = (queueUrl: string): boolean => queueUrl.endsWith('.fifo');
