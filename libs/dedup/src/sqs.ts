/**
 * `@once/dedup/sqs`: the SQS adapter (redrive policy, dead-lettering, visibility, queue depth) the
 * dedup runner, the worker, the api's queue admin and the tools share.
 */
export { SqsQueueOps } from './lib/sqs/sqs-queue.ops';
