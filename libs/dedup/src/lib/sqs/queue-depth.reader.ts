import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** A queue's approximate message counts, as SQS reports them. */
export interface QueueDepth {
  /** Ready to be received (ApproximateNumberOfMessages). */
  readonly visible: number;
  /** Received, not yet deleted nor visible again (ApproximateNumberOfMessagesNotVisible). */
  readonly inFlight: number;
  /** Sent with a delay not yet over (ApproximateNumberOfMessagesDelayed). */
  readonly delayed: number;
}

/** Reads a queue's {@link QueueDepth} (one GetQueueAttributes call). */
export async function readQueueDepth(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/** Messages still in the queue: visible + in flight (+ delayed unless `withDelayed` is false). */
export const messagesLeft = (depth: QueueDepth, { withDelayed = true } = {}): number =>
  depth.visible + depth.inFlight + (withDelayed ? depth.delayed : 0);
