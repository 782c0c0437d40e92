import type { Message, MessageAttributeValue } from '@aws-sdk/client-sqs';

/** SQS accepts 10 message attributes per message at most. */
export const MAX_MESSAGE_ATTRIBUTES = 10;

/**
 * A received message's attributes as a send accepts them: the value fields only (a received
 * value can carry empty list fields SQS does not take back).
 */
export function copyAttributes(message: Message): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    attributes[name] = {
      DataType: value.DataType,
      ...(value.StringValue !== undefined && { StringValue: value.StringValue }),
      ...(value.BinaryValue !== undefined && { BinaryValue: value.BinaryValue }),
    };
  }
  return attributes;
}

/**
 * Message attribute on a copy the lib re-sent to defer an in-flight duplicate: the MessageId of the
 * message first received (kept across repeated deferrals).
 */
export const DEFERRED_FROM_ATTRIBUTE = 'once-deferred-from';

/**
 * Message attribute on a copy the lib re-sent for a handler's `RetryAfterError`: how many times
 * the message was deferred that way (carried on by every later copy, counted up only by retries).
 * It bounds the receives a retry spares: see `maxRetryDeferrals`.
 */
export const RETRY_DEFERRALS_ATTRIBUTE = 'once-retry-deferrals';

/** The retry deferrals a message carries ({@link RETRY_DEFERRALS_ATTRIBUTE}); 0 when untagged or unreadable. */
export function retryDeferralsOf(message: Message): number {
  const count = Number(message.MessageAttributes?.[RETRY_DEFERRALS_ATTRIBUTE]?.StringValue);
  return Number.isSafeInteger(count) && count > 0 ? count : 0;
}

/** `ApproximateReceiveCount` of a received message (NaN when the consumer did not ask for it). */
export const receiveCountOf = (message: Message): number =>
  Number(message.Attributes?.ApproximateReceiveCount);

/**
 * A message received for the first time that is no copy the lib re-sent (to defer an in-flight
 * duplicate or a retry): most likely the first time its key is seen. A hint for fast paths that
 * stay correct when it is wrong; false without a receive count.
 */
export function isFirstDelivery(message: Message): boolean {
  return (
    receiveCountOf(message) === 1 &&
    !message.MessageAttributes?.[DEFERRED_FROM_ATTRIBUTE] &&
    !message.MessageAttributes?.[RETRY_DEFERRALS_ATTRIBUTE]
  );
}
