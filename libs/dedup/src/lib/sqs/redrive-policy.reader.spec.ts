import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  MalformedRedrivePolicyError,
  parseRedrivePolicy,
  parseSqsQueueArn,
  REDRIVE_TTL_MS,
  RedrivePolicyReader,
} from './redrive-policy.reader';

const QUEUE = 'http://sqs/000000000000/jobs';

function fakeSqs(redrivePolicy: () => string | undefined) {
  const calls: string[] = [];
  const sqs = {
    send: async (command: unknown) => {
      if (command instanceof GetQueueAttributesCommand) {
        calls.push('attributes');
        const policy = redrivePolicy();
        return { Attributes: policy === undefined ? {} : { RedrivePolicy: policy } };
      }
      if (command instanceof GetQueueUrlCommand) {
        const { QueueName, QueueOwnerAWSAccountId } = command.input;
        calls.push(`url ${QueueOwnerAWSAccountId} ${QueueName}`);
        return { QueueUrl: `http://sqs/${QueueOwnerAWSAccountId}/${QueueName}` };
      }
      throw new Error('unexpected command');
    },
  };
  return { queue: { sqs: sqs as unknown as SQSClient, queueUrl: QUEUE }, calls };
}

const policy = (arn: string, maxReceiveCount: unknown = 3) =>
  JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount });

describe('parseRedrivePolicy', () => {
  it('reads the ARN and the receive count (a number or a numeric string)', () => {
    expect(parseRedrivePolicy(QUEUE, policy('arn:aws:sqs:us-east-1:111122223333:dlq', '5'))).toEqual({
      deadLetterTargetArn: 'arn:aws:sqs:us-east-1:111122223333:dlq',
      maxReceiveCount: 5,
    });
    expect(parseSqsQueueArn('arn:aws-cn:sqs:cn-north-1:111122223333:dlq.fifo')).toEqual({
      region: 'cn-north-1',
      account: '111122223333',
      name: 'dlq.fifo',
    });
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['no ARN', JSON.stringify({ maxReceiveCount: 3 }), /deadLetterTargetArn undefined/],
    ['a queue name, not an ARN', policy('jobs-dlq'), /"jobs-dlq" is no SQS queue ARN/],
    ['an SNS ARN', policy('arn:aws:sns:us-east-1:111122223333:topic'), /no SQS queue ARN/],
    ['no receive count', policy('arn:aws:sqs:us-east-1:111122223333:dlq', null), /maxReceiveCount null/],
    ['a count of 0', policy('arn:aws:sqs:us-east-1:111122223333:dlq', 0), /maxReceiveCount 0/],
  ])('refuses %s with an error naming the queue', (_, raw, detail) => {
    expect(() => parseRedrivePolicy(QUEUE, raw)).toThrow(MalformedRedrivePolicyError);
    expect(() => parseRedrivePolicy(QUEUE, raw)).toThrow(`queue ${QUEUE} has a malformed redrive policy`);
    expect(() => parseRedrivePolicy(QUEUE, raw)).toThrow(detail);
  });
});

describe('RedrivePolicyReader', () => {
  it('caches the policy for its TTL and the DLQ URL, looked up in the account of its ARN', async () => {
    let now = 0;
    const fake = fakeSqs(() => policy('arn:aws:sqs:eu-west-1:111122223333:jobs-dlq'));
    const reader = new RedrivePolicyReader(() => now);

    await expect(reader.deadLetterUrlOf(fake.queue)).resolves.toBe('http://sqs/111122223333/jobs-dlq');
    await expect(reader.requireDeadLetterUrl(fake.queue)).resolves.toBe('http://sqs/111122223333/jobs-dlq');
    expect(fake.calls).toEqual(['attributes', 'url 111122223333 jobs-dlq']);

    now += REDRIVE_TTL_MS;
    await expect(reader.policyOf(fake.queue)).resolves.toMatchObject({ maxReceiveCount: 3 });
    expect(fake.calls).toEqual(['attributes', 'url 111122223333 jobs-dlq', 'attributes']);
  });

  it('null without a policy (an error where a DLQ is required); a malformed one is refused and read again', async () => {
    expect(await new RedrivePolicyReader().deadLetterUrlOf(fakeSqs(() => undefined).queue)).toBeNull();
    await expect(
      new RedrivePolicyReader().requireDeadLetterUrl(fakeSqs(() => undefined).queue),
    ).rejects.toThrow(`queue ${QUEUE} has no redrive policy`);
    const fake = fakeSqs(() => '{"deadLetterTargetArn": "dlq", "maxReceiveCount": 3}');
    const reader = new RedrivePolicyReader();
    await expect(reader.policyOf(fake.queue)).rejects.toThrow(MalformedRedrivePolicyError);
    await expect(reader.deadLetterUrlOf(fake.queue)).rejects.toThrow(MalformedRedrivePolicyError);
    expect(fake.calls).toEqual(['attributes', 'attributes']);
  });
});
