import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

/** An SQSClient for the emulator described by the e2e environment. */
export function testSqsClient(env: Record<string, string | undefined> = process.env): SQSClient {
  return new SQSClient({
    region: env['AWS_REGION'] ?? 'us-east-1',
    endpoint: env['SQS_ENDPOINT'],
    credentials: {
      accessKeyId: env['AWS_ACCESS_KEY_ID'] ?? 'local',
      secretAccessKey: env['AWS_SECRET_ACCESS_KEY'] ?? 'local',
    },
  });
}

/** Queue URLs created by the e2e global setup, by name. */
export function e2eQueueUrl(name: string, env: Record<string, string | undefined> = process.env): string {
  const urls = JSON.parse(env['E2E_QUEUE_URLS'] ?? '{}') as Record<string, string>;
  const url = urls[name];
  if (!url) throw new Error(`no e2e queue named ${name}`);
  return url;
}

/**
 * Creates `name` and `name-dlq` with a redrive policy and returns both URLs: the one way tests,
 * the dedup e2e fixtures and the pipeline bench make a queue with a dead-letter queue.
 */
export async function createTestQueue(
  sqs: SQSClient,
  name: string,
  {
    visibilityTimeout = 5,
    maxReceiveCount = 3,
  }: { visibilityTimeout?: number; maxReceiveCount?: number } = {},
): Promise<{ url: string; dlqUrl: string }> {
  const { QueueUrl: dlqUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
  );
  const { QueueUrl: url } = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(visibilityTimeout),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes?.['QueueArn'],
          maxReceiveCount: String(maxReceiveCount),
        }),
      },
    }),
  );
  if (!url || !dlqUrl) throw new Error(`CreateQueue returned no URL for ${name}`);
  return { url, dlqUrl };
}

export async function sendJson(sqs: SQSClient, queueUrl: string, body: unknown): Promise<string> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const { MessageId } = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: raw }));
  if (!MessageId) throw new Error('SendMessage returned no MessageId');
  return MessageId;
}

/** Receives (and deletes) up to 10 messages, waiting up to `waitSeconds`. */
export async function drain(sqs: SQSClient, queueUrl: string, waitSeconds = 1): Promise<Message[]> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: waitSeconds,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }),
  );
  for (const message of Messages) {
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
  }
  return Messages;
}
