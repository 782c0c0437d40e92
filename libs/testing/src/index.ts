export * from './lib/wait-for';
export * from './lib/ses-mailbox';
export * from './lib/sqs-test-queue';
export * from './lib/own-redis.server';
export * from './lib/http-forward.util';
export * from './lib/redaction.corpus';
export * from './lib/log-lines';
export * from './lib/linear-cost';
