/** Consumer and producer names the worker registers with @ssut/nestjs-sqs. */
export const JOBS_CONSUMER = 'jobs';
export const EMAIL_CONSUMER = 'send-email';
export const EMAIL_PRODUCER = 'send-email';

/** The worker's SQSClient (explicit endpoint), shared by consumers, producers and admin calls. */
export const WORKER_SQS_CLIENT = Symbol('WORKER_SQS_CLIENT');

/** Queue URLs resolved at boot, by consumer name. */
export const WORKER_QUEUE_URLS = Symbol('WORKER_QUEUE_URLS');
export type WorkerQueueUrls = Record<typeof JOBS_CONSUMER | typeof EMAIL_CONSUMER, string>;
