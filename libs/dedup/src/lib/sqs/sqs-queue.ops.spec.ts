import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type GetQueueUrlCommandInput,
  type Message,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { Logger } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import { DEAD_LETTER_ATTRIBUTES } from '../dedup.constants';
import { DEFERRED_FROM_ATTRIBUTE, RETRY_DEFERRALS_ATTRIBUTE, SqsQueueOps } from './sqs-queue.ops';

/** A fake SQS client: answers GetQueueAttributes with `redrivePolicy`, records SendMessageBatch entries. */
function fakeSqs(redrivePolicy: string | undefined | Error, failIds: string[] = []) {
  const sent: SendMessageBatchRequestEntry[] = [];
  const urlLookups: GetQueueUrlCommandInput[] = [];
  let attributeReads = 0;
  const sqs = {
    send: async (command: unknown) => {
      if (command instanceof GetQueueUrlCommand) {
        urlLookups.push(command.input);
        return { QueueUrl: `http://sqs/${command.input.QueueOwnerAWSAccountId}/${command.input.QueueName}` };
      }
      if (command instanceof GetQueueAttributesCommand) {
        attributeReads += 1;
        if (redrivePolicy instanceof Error) throw redrivePolicy;
        return { Attributes: redrivePolicy === undefined ? {} : { RedrivePolicy: redrivePolicy } };
      }
      if (command instanceof SendMessageBatchCommand) {
        const entries = command.input.Entries ?? [];
        sent.push(...entries);
        return {
          Successful: entries
            .filter((e) => !failIds.includes(e.Id ?? ''))
            .map((e) => ({ Id: e.Id, MessageId: `copy-${e.Id}` })),
          Failed: entries
            .filter((e) => failIds.includes(e.Id ?? ''))
            .map((e) => ({ Id: e.Id, Code: 'InternalError' })),
        };
      }
      throw new Error('unexpected command');
    },
  };
  return { sqs, sent, urlLookups, reads: () => attributeReads };
}

function opsFor(
  sqs: ReturnType<typeof fakeSqs>['sqs'],
  { queueUrl = 'http://sqs/000000000000/jobs', messageAttributeNames = ['All'] as string[] | undefined } = {},
) {
  const sqsService = {
    getQueueInfo: () => ({ sqs, queueUrl }),
    options: { consumers: [{ name: 'jobs', messageAttributeNames }] },
  };
  return new SqsQueueOps({ get: () => sqsService } as unknown as ModuleRef);
}

const policy = (maxReceiveCount: number | string) =>
  JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:jobs-dlq', maxReceiveCount });

beforeAll(() => Logger.overrideLogger(false));

describe('SqsQueueOps.deferralTarget', () => {
  it('reads maxReceiveCount from the redrive policy once (cached) and sees whether the consumer gets all attributes', async () => {
    const fake = fakeSqs(policy('3'));
    const ops = opsFor(fake.sqs);
    await expect(ops.deferralTarget('jobs')).resolves.toEqual({
      fifo: false,
      maxReceiveCount: 3,
      copiesAttributes: true,
    });
    await ops.deferralTarget('jobs');
    expect(fake.reads()).toBe(1);
    await expect(
      opsFor(fake.sqs, { messageAttributeNames: ['trace'] }).deferralTarget('jobs'),
    ).resolves.toMatchObject({ copiesAttributes: false });
    await expect(
      opsFor(fake.sqs, { queueUrl: 'http://sqs/000000000000/jobs.fifo' }).deferralTarget('jobs'),
    ).resolves.toMatchObject({ fifo: true });
  });

  it('null without a redrive policy; undefined (the worst case) when it cannot be read, and reads again next time', async () => {
    await expect(opsFor(fakeSqs(undefined).sqs).deferralTarget('jobs')).resolves.toMatchObject({
      maxReceiveCount: null,
    });
    const failing = fakeSqs(new Error('throttled'));
    const ops = opsFor(failing.sqs);
    await expect(ops.deferralTarget('jobs')).resolves.toMatchObject({ maxReceiveCount: undefined });
    await ops.deferralTarget('jobs');
    expect(failing.reads()).toBe(2);
  });
});

describe('SqsQueueOps.resend', () => {
  const message = (id: string, attributes: Message['MessageAttributes'] = {}): Message => ({
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: `{"eventId":"${id}"}`,
    MessageAttributes: attributes,
  });

  it('sends delayed copies (delay capped at 900 s) with the body, the attributes and the first MessageId', async () => {
    const fake = fakeSqs(policy(3), ['1']);
    const ops = opsFor(fake.sqs);
    const plain = message('m1', {
      trace: { DataType: 'String', StringValue: 't', StringListValues: [], BinaryListValues: [] },
    });
    const again = message('m2', { [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'm0' } });

    const sent = await ops.resend('jobs', [plain, again], 1200);

    expect([...sent]).toEqual([plain]);
    expect(fake.sent).toEqual([
      {
        Id: '0',
        MessageBody: '{"eventId":"m1"}',
        DelaySeconds: 900,
        MessageAttributes: {
          trace: { DataType: 'String', StringValue: 't' },
          [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'm1' },
        },
      },
      {
        Id: '1',
        MessageBody: '{"eventId":"m2"}',
        DelaySeconds: 900,
        MessageAttributes: { [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'm0' } },
      },
    ]);
  });

  it("respects SQS's 10-attribute cap: a full message is copied without the tag", async () => {
    const fake = fakeSqs(policy(3));
    const full = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: String(i) }]),
    );
    await opsFor(fake.sqs).resend('jobs', [message('m1', full)], 3);
    expect(Object.keys(fake.sent[0]?.MessageAttributes ?? {})).toHaveLength(10);
    expect(fake.sent[0]?.MessageAttributes?.[DEFERRED_FROM_ATTRIBUTE]).toBeUndefined();
  });
});

describe('SqsQueueOps.resend for a retry', () => {
  const message = (id: string, attributes: Message['MessageAttributes'] = {}): Message => ({
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: `{"eventId":"${id}"}`,
    MessageAttributes: attributes,
  });
  const full = (n: number) =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: String(i) }]),
    );

  it('tags the copy with the retry count (replacing the one it carried), beside the first MessageId', async () => {
    const fake = fakeSqs(policy(3));
    const again = message('m2', {
      [RETRY_DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: '2' },
      [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'm0' },
    });
    const sent = await opsFor(fake.sqs).resend('jobs', [message('m1'), again], 5, 3);
    expect(sent.size).toBe(2);
    expect(fake.sent.map((entry) => entry.MessageAttributes)).toEqual([
      {
        [RETRY_DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: '3' },
        [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'm1' },
      },
      {
        [RETRY_DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: '3' },
        [DEFERRED_FROM_ATTRIBUTE]: { DataType: 'String', StringValue: 'm0' },
      },
    ]);
  });

  it('never sends an uncounted retry: a message at the 10-attribute cap is not copied (the caller keeps it)', async () => {
    const fake = fakeSqs(policy(3));
    const atCap = message('m1', full(10));
    const roomForCount = message('m2', full(9));
    const sent = await opsFor(fake.sqs).resend('jobs', [atCap, roomForCount], 5, 1);
    expect([...sent]).toEqual([roomForCount]);
    expect(fake.sent).toHaveLength(1);
    expect(fake.sent[0]?.MessageAttributes?.[RETRY_DEFERRALS_ATTRIBUTE]?.StringValue).toBe('1');
    expect(Object.keys(fake.sent[0]?.MessageAttributes ?? {})).toHaveLength(10);
  });
});

describe('SqsQueueOps.deadLetter', () => {
  const crossAccount = JSON.stringify({
    deadLetterTargetArn: 'arn:aws:sqs:eu-west-1:111122223333:jobs-dlq',
    maxReceiveCount: 3,
  });

  it('finds the DLQ in the account its ARN names and keeps the reason and sources on a message with 10 attributes', async () => {
    const fake = fakeSqs(crossAccount);
    const full = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: String(i) }]),
    );
    const message: Message = { MessageId: 'm1', ReceiptHandle: 'rh', Body: '{}', MessageAttributes: full };

    const sent = await opsFor(fake.sqs).deadLetter('jobs', [{ message, reason: 'no key' }]);

    expect([...sent]).toEqual([message]);
    expect(fake.urlLookups).toEqual([{ QueueName: 'jobs-dlq', QueueOwnerAWSAccountId: '111122223333' }]);
    const attributes = fake.sent[0]?.MessageAttributes ?? {};
    expect(Object.keys(attributes)).toHaveLength(10);
    expect(attributes).toMatchObject({
      [DEAD_LETTER_ATTRIBUTES.reason]: { DataType: 'String', StringValue: 'no key' },
      [DEAD_LETTER_ATTRIBUTES.sourceQueue]: { StringValue: 'http://sqs/000000000000/jobs' },
      [DEAD_LETTER_ATTRIBUTES.sourceMessageId]: { StringValue: 'm1' },
    });
    // The originals fill the 7 places left, in the order received.
    expect(Object.keys(attributes).filter((name) => name.startsWith('a'))).toEqual([
      'a0',
      'a1',
      'a2',
      'a3',
      'a4',
      'a5',
      'a6',
    ]);
  });

  it('sends nothing (the messages stay with SQS redrive) when the redrive policy is malformed', async () => {
    const fake = fakeSqs('{"deadLetterTargetArn": "jobs-dlq", "maxReceiveCount": 3}');
    const message: Message = { MessageId: 'm1', ReceiptHandle: 'rh', Body: '{}' };
    await expect(opsFor(fake.sqs).deadLetter('jobs', [{ message, reason: 'bad' }])).resolves.toEqual(
      new Set(),
    );
    expect(fake.sent).toEqual([]);
  });
});
