import type { Message } from '@aws-sdk/client-sqs';
import { DEFERRED_FROM_ATTRIBUTE, isFirstDelivery, RETRY_DEFERRALS_ATTRIBUTE } from './message-attributes';

const message = (receiveCount: string | undefined, attributes: string[] = []): Message => ({
  MessageId: 'm-1',
  Body: '{}',
  Attributes: receiveCount === undefined ? undefined : { ApproximateReceiveCount: receiveCount },
  MessageAttributes: Object.fromEntries(
    attributes.map((name) => [name, { DataType: 'String', StringValue: '1' }]),
  ),
});

describe('isFirstDelivery', () => {
  it('is true only for a first receive of a message the lib did not re-send', () => {
    expect(isFirstDelivery(message('1'))).toBe(true);
    expect(isFirstDelivery(message('1', ['other']))).toBe(true);
    expect(isFirstDelivery(message('2'))).toBe(false);
    expect(isFirstDelivery(message(undefined))).toBe(false);
    expect(isFirstDelivery(message('x'))).toBe(false);
    expect(isFirstDelivery(message('1', [DEFERRED_FROM_ATTRIBUTE]))).toBe(false);
    expect(isFirstDelivery(message('1', [RETRY_DEFERRALS_ATTRIBUTE]))).toBe(false);
  });
});
