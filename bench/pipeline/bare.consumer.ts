import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import type { Message } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { z } from 'zod';
// The file, not `@once/platform`: the index would load Nest, which the baseline must not carry.
import { createSqsClient, resolveQueueUrl } from '../../libs/platform/src/lib/sqs/sqs-client.factory';

/**
 * The bench's bare baseline: receive → SES SendEmail → delete, nothing else (no ledger, no dedup,
 * no Nest, no schema validation). SQS settings are the worker's (apps/worker/src/sqs/worker-sqs.module.ts):
 * the same deadline-wrapped SQSClient, sqs-consumer with batch size 10, the same wait time and
 * attributes, one poll loop whose batch is handled concurrently and acknowledged in one
 * DeleteMessageBatch (a batch handler, as the worker's send-email consumer).
 * The SESv2Client is built as libs/mail builds it (one attempt, same timeouts).
 */
const envSchema = z.object({
  AWS_REGION: z.string().min(1),
  AWS_ACCESS_KEY_ID: z.string().min(1),
  AWS_SECRET_ACCESS_KEY: z.string().min(1),
  SQS_ENDPOINT: z.url(),
  SES_ENDPOINT: z.url(),
  SQS_EMAIL_QUEUE: z.string().min(1),
  SQS_BATCH_SIZE: z.coerce.number().int().min(1).max(10).default(10),
  SQS_WAIT_TIME_SECONDS: z.coerce.number().int().min(0).max(20).default(20),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  MAIL_FROM: z.email().default('digest@once.local'),
});

interface EmailBody {
  eventId: string;
  to: string;
  subject: string;
  text: string;
  userId?: string;
}

async function main(): Promise<void> {
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`bare consumer: invalid environment: ${issues.join('; ')}`);
  }
  const env = parsed.data;
  const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  const sqs = createSqsClient(env);
  const ses = new SESv2Client({
    region: env.AWS_REGION,
    endpoint: env.SES_ENDPOINT,
    credentials,
    maxAttempts: 1,
    requestHandler: { requestTimeout: 15_000, throwOnRequestTimeout: true, connectionTimeout: 5_000 },
  });
  const queueUrl = await resolveQueueUrl(sqs, env.SQS_EMAIL_QUEUE);

  const send = async (message: Message): Promise<void> => {
    const email = JSON.parse(message.Body ?? '') as EmailBody;
    await ses.send(
      new SendEmailCommand({
        FromEmailAddress: env.MAIL_FROM,
        Destination: { ToAddresses: [email.to] },
        Content: {
          Simple: {
            Subject: { Data: email.subject, Charset: 'UTF-8' },
            Body: { Text: { Data: email.text, Charset: 'UTF-8' } },
            Headers: [
              { Name: 'X-Once-Key', Value: email.eventId },
              {
                Name: 'List-Unsubscribe',
                Value: `<mailto:unsubscribe@once.local?subject=unsubscribe%20${encodeURIComponent(email.userId ?? email.to)}>`,
              },
            ],
          },
        },
      }),
    );
  };

  const consumer = Consumer.create({
    sqs,
    queueUrl,
    batchSize: env.SQS_BATCH_SIZE,
    waitTimeSeconds: env.SQS_WAIT_TIME_SECONDS,
    pollingCompleteWaitTimeMs: env.SHUTDOWN_TIMEOUT_MS,
    messageSystemAttributeNames: ['ApproximateReceiveCount'],
    messageAttributeNames: ['All'],
    // As the worker's send-email consumer: the batch's sends at once, the sent ones acknowledged
    // together (one DeleteMessageBatch), a failed one left on the queue.
    handleMessageBatch: async (messages: Message[]) => {
      const sent = await Promise.allSettled(messages.map((message) => send(message)));
      sent.forEach((result) => {
        if (result.status === 'rejected')
          process.stderr.write(`processing_error: ${(result.reason as Error).message}\n`);
      });
      return messages.filter((_, i) => sent[i]?.status === 'fulfilled');
    },
  });
  // A failed message stays on the queue (SQS redelivers it); the bench counts what SES accepted.
  consumer.on('processing_error', (error) => process.stderr.write(`processing_error: ${error.message}\n`));
  consumer.on('error', (error) => process.stderr.write(`error: ${error.message}\n`));

  const stop = () => {
    consumer.once('stopped', () => {
      sqs.destroy();
      ses.destroy();
      process.exit(0);
    });
    consumer.stop();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  consumer.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
