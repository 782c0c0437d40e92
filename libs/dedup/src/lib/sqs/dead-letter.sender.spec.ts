import {
  type Message,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DEAD_LETTER_ATTRIBUTES } from '../dedup.constants';
import { DEFAULT_DEAD_LETTER_GROUP, deadLetterAttributes, DeadLetterSender } from './dead-letter.sender';
import type { RedrivePolicyReader } from './redrive-policy.reader';

const SOURCE = 'http://sqs/000000000000/jobs';
const attributes = (count: number, prefix = 'a') =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`${prefix}${i}`, { DataType: 'String', StringValue: `${i}` }]),
  );

describe('deadLetterAttributes', () => {
  it('always keeps our reason and sources; the originals fill the 7 places left, in the order received', () => {
    const message: Message = { MessageId: 'm1', MessageAttributes: attributes(12) };
    const copy = deadLetterAttributes(message, SOURCE, 'x'.repeat(2000));
    expect(Object.keys(copy)).toEqual([
      'a0',
      'a1',
      'a2',
      'a3',
      'a4',
      'a5',
      'a6',
      DEAD_LETTER_ATTRIBUTES.reason,
      DEAD_LETTER_ATTRIBUTES.sourceQueue,
      DEAD_LETTER_ATTRIBUTES.sourceMessageId,
    ]);
    expect(copy[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue).toHaveLength(1024);
    expect(copy[DEAD_LETTER_ATTRIBUTES.sourceQueue]).toEqual({ DataType: 'String', StringValue: SOURCE });
  });

  it('replaces an original bearing one of our names (a redriven dead letter dead-lettered again), without losing a place', () => {
    const message: Message = {
      MessageId: 'm2',
      MessageAttributes: {
        [DEAD_LETTER_ATTRIBUTES.reason]: { DataType: 'String', StringValue: 'old reason' },
        ...attributes(8),
      },
    };
    const copy = deadLetterAttributes(message, SOURCE, 'new reason');
    expect(Object.keys(copy)).toHaveLength(10);
    expect(copy[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue).toBe('new reason');
    expect(copy[DEAD_LETTER_ATTRIBUTES.sourceMessageId]?.StringValue).toBe('m2');
  });
});

describe('DeadLetterSender', () => {
  function fakeSqs(failIds: string[] = []) {
    const sent: { queueUrl?: string; entry: SendMessageBatchRequestEntry }[] = [];
    const sqs = {
      send: async (command: unknown) => {
        if (!(command instanceof SendMessageBatchCommand)) throw new Error('unexpected command');
        const entries = command.input.Entries ?? [];
        for (const entry of entries) sent.push({ queueUrl: command.input.QueueUrl, entry });
        return {
          Successful: entries.filter((e) => !failIds.includes(e.Id ?? '')).map((e) => ({ Id: e.Id })),
          Failed: entries
            .filter((e) => failIds.includes(e.Id ?? ''))
            .map((e) => ({ Id: e.Id, Code: 'InternalError' })),
        };
      },
    };
    return { sqs: sqs as unknown as SQSClient, sent };
  }
  const reader = (dlqUrl: string) =>
    ({ requireDeadLetterUrl: async () => dlqUrl }) as unknown as RedrivePolicyReader;

  it('on a FIFO DLQ keeps the group of the original (or a default one) and deduplicates by its MessageId', async () => {
    const fake = fakeSqs(['1']);
    const grouped: Message = { MessageId: 'm1', Body: 'a', Attributes: { MessageGroupId: 'tenant-1' } };
    const ungrouped: Message = { MessageId: 'm2', Body: 'b' };
    const outcome = await new DeadLetterSender(reader('http://sqs/0/jobs-dlq.fifo')).send(
      { sqs: fake.sqs, queueUrl: 'http://sqs/0/jobs.fifo' },
      [
        { message: grouped, reason: 'r' },
        { message: ungrouped, reason: 'r' },
      ],
    );
    expect(
      fake.sent.map(({ queueUrl, entry }) => [queueUrl, entry.MessageGroupId, entry.MessageDeduplicationId]),
    ).toEqual([
      ['http://sqs/0/jobs-dlq.fifo', 'tenant-1', 'm1'],
      ['http://sqs/0/jobs-dlq.fifo', DEFAULT_DEAD_LETTER_GROUP, 'm2'],
    ]);
    expect([...outcome.sent]).toEqual([grouped]);
    expect(outcome.failed).toEqual([{ message: ungrouped, error: 'InternalError: ' }]);
  });

  it('on a standard DLQ sends no group, in batches of 10', async () => {
    const fake = fakeSqs();
    const entries = Array.from({ length: 12 }, (_, i) => ({
      message: { MessageId: `m${i}`, Body: '{}' },
      reason: 'r',
    }));
    const outcome = await new DeadLetterSender(reader('http://sqs/0/jobs-dlq')).send(
      { sqs: fake.sqs, queueUrl: SOURCE },
      entries,
    );
    expect(outcome.sent.size).toBe(12);
    expect(fake.sent.every(({ entry }) => entry.MessageGroupId === undefined)).toBe(true);
  });
});
