/**
 * `@once/dedup/sqs`: the SQS adapter (redrive policy, dead-lettering, visibility, queue depth) the
 * dedup runner, the worker, the api's queue admin and the tools share. It works on an SQSClient
 * and a queue URL; only `NestjsSqsConsumers` (and `SqsQueueOps`, which finds a consumer's queue
 * through it) touches @ssut/nestjs-sqs, loaded lazily.
 */
export { DEAD_LETTER_ATTRIBUTES } from './lib/dedup.constants';
export {
  DEFAULT_DEAD_LETTER_GROUP,
  DeadLetterSender,
  deadLetterAttributes,
  MAX_REASON_LENGTH,
  type DeadLetterEntry,
  type DeadLetterOutcome,
} from './lib/sqs/dead-letter.sender';
export {
  copyAttributes,
  isFirstDelivery,
  MAX_MESSAGE_ATTRIBUTES,
  receiveCountOf,
} from './lib/sqs/message-attributes';
export {
  loadNestjsSqs,
  NestjsSqsConsumers,
  SUPPORTED_NESTJS_SQS_RANGE,
} from './lib/sqs/nestjs-sqs.consumers';
export { messagesLeft, readQueueDepth, type QueueDepth } from './lib/sqs/queue-depth.reader';
export {
  MalformedRedrivePolicyError,
  parseRedrivePolicy,
  parseSqsQueueArn,
  REDRIVE_TTL_MS,
  RedrivePolicyReader,
  type Redrive,
  type SqsQueueArn,
} from './lib/sqs/redrive-policy.reader';
export { isFifoQueue, SQS_BATCH_SIZE, type SqsQueueRef } from './lib/sqs/sqs-queue.ref';
export {
  DEFERRED_FROM_ATTRIBUTE,
  RETRY_DEFERRALS_ATTRIBUTE,
  SqsQueueOps,
  type ConsumerQueue,
  type DeferralTarget,
} from './lib/sqs/sqs-queue.ops';
export {
  clampDelaySeconds,
  clampVisibilitySeconds,
  MAX_DELAY_SECONDS,
  MAX_VISIBILITY_SECONDS,
} from './lib/sqs/visibility';
