import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type GetQueueUrlCommandInput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { ApiConfig } from '../config/api.config';
import { QueueAdminService } from './queue-admin.service';

const JOBS_URL = 'http://sqs.local/000000000000/jobs';
const EMAIL_URL = 'http://sqs.local/000000000000/send-email';

/** Answers the SQS calls QueueAdminService makes; the DLQs live in another account (111122223333). */
function fakeSqs(redrivePolicy: string) {
  const urlLookups: GetQueueUrlCommandInput[] = [];
  jest.spyOn(SQSClient.prototype, 'send').mockImplementation(async (command: unknown) => {
    if (command instanceof GetQueueUrlCommand) {
      urlLookups.push(command.input);
      const { QueueName, QueueOwnerAWSAccountId } = command.input;
      if (QueueOwnerAWSAccountId !== '111122223333') throw new Error(`${QueueName} does not exist`);
      return { QueueUrl: `http://sqs.local/111122223333/${QueueName}` };
    }
    if (command instanceof GetQueueAttributesCommand) {
      if (command.input.AttributeNames?.includes('RedrivePolicy'))
        return { Attributes: { RedrivePolicy: redrivePolicy } };
      return {
        Attributes: {
          ApproximateNumberOfMessages: '4',
          ApproximateNumberOfMessagesNotVisible: '1',
          ApproximateNumberOfMessagesDelayed: '0',
        },
      };
    }
    throw new Error('unexpected command');
  });
  return { urlLookups };
}

const service = () =>
  new QueueAdminService({
    AWS_REGION: 'eu-west-1',
    SQS_ENDPOINT: 'http://sqs.local',
    SQS_JOBS_QUEUE: JOBS_URL,
    SQS_EMAIL_QUEUE: EMAIL_URL,
  } as ApiConfig);

afterEach(() => jest.restoreAllMocks());

describe('QueueAdminService', () => {
  it("finds a dead-letter queue in the account its redrive policy's ARN names", async () => {
    const fake = fakeSqs(
      JSON.stringify({
        deadLetterTargetArn: 'arn:aws:sqs:eu-west-1:111122223333:once-dlq',
        maxReceiveCount: '4',
      }),
    );
    const admin = service();

    const [jobs] = await admin.list();

    expect(jobs).toEqual({
      name: 'jobs',
      url: JOBS_URL,
      visible: 4,
      inFlight: 1,
      delayed: 0,
      maxReceiveCount: 4,
      deadLetter: { url: 'http://sqs.local/111122223333/once-dlq', visible: 4, inFlight: 1, delayed: 0 },
    });
    expect(fake.urlLookups).toContainEqual({ QueueName: 'once-dlq', QueueOwnerAWSAccountId: '111122223333' });
    admin.onApplicationShutdown();
  });

  it('refuses a malformed redrive policy with an error that names the queue', async () => {
    fakeSqs('{"deadLetterTargetArn": 42}');
    const admin = service();
    await expect(admin.list()).rejects.toThrow(/redrive policy.*jobs|jobs.*redrive policy/);
    admin.onApplicationShutdown();
  });
});
