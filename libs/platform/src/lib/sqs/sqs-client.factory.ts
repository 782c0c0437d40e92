import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { AwsEnv } from '../config/config.schemas';

/** Region, endpoint and (optional, else the default chain) credentials for an AWS SDK v3 client. */
export function awsClientConfig(aws: AwsEnv, endpoint: string | undefined) {
  const credentials =
    aws.AWS_ACCESS_KEY_ID && aws.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: aws.AWS_ACCESS_KEY_ID, secretAccessKey: aws.AWS_SECRET_ACCESS_KEY }
      : undefined;
  return { region: aws.AWS_REGION, endpoint, credentials };
}

/**
 * An SQSClient with an explicit endpoint when one is configured. Every consumer and producer
 * must use it: emulators hand out queue URLs whose host does not resolve.
 */
export function createSqsClient(aws: AwsEnv): SQSClient {
  return new SQSClient(awsClientConfig(aws, aws.SQS_ENDPOINT));
}

/** Accepts a queue URL as is; resolves a queue name with GetQueueUrl. */
export async function resolveQueueUrl(sqs: SQSClient, nameOrUrl: string): Promise<string> {
  if (/^https?:\/\//.test(nameOrUrl)) return nameOrUrl;
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: nameOrUrl }));
    if (!QueueUrl) throw new Error('empty QueueUrl');
    return QueueUrl;
  } catch (error) {
    throw new Error(`Cannot resolve SQS queue "${nameOrUrl}": ${(error as Error).message}`, { cause: error });
  }
}
