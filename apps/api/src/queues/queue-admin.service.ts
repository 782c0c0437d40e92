import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Inject, Injectable, Logger, NotFoundException, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, createSqsClient, resolveQueueUrl } from '@once/platform';
import { ApiConfig } from '../config/api.config';

/** Logical queue names the admin API knows. */
export const ADMIN_QUEUES = ['jobs', 'send-email'] as const;
export type AdminQueue = (typeof ADMIN_QUEUES)[number];

export interface QueueDepth {
  url: string;
  visible: number;
  inFlight: number;
  delayed: number;
}

export interface QueueStatus extends QueueDepth {
  name: AdminQueue;
  maxReceiveCount: number | null;
  deadLetter: QueueDepth | null;
}

export interface DeadLetter {
  messageId: string;
  body: string;
  reason: string | null;
  sourceMessageId: string | null;
  receiveCount: number;
  sentAt: string | null;
}

interface Resolved {
  url: string;
  dlqUrl: string | null;
  maxReceiveCount: number | null;
}

// Attributes the worker's dead-letter path adds; dropped again when a message is redriven.
const DEAD_LETTER_ATTRIBUTE_PREFIX = 'once-';

/** Queue depths, dead-letter peeks and redrive, straight against SQS (works on the emulator too). */
@Injectable()
export class QueueAdminService implements OnApplicationShutdown {
  private readonly logger = new Logger(QueueAdminService.name);
  private readonly sqs: SQSClient;
  private readonly resolved = new Map<AdminQueue, Promise<Resolved>>();

  constructor(@Inject(APP_CONFIG) private readonly config: ApiConfig) {
    this.sqs = createSqsClient(config);
  }

  async list(): Promise<QueueStatus[]> {
    return Promise.all(
      ADMIN_QUEUES.map(async (name) => {
        const queue = await this.resolve(name);
        return {
          name,
          ...(await this.depth(queue.url)),
          maxReceiveCount: queue.maxReceiveCount,
          deadLetter: queue.dlqUrl ? await this.depth(queue.dlqUrl) : null,
        };
      }),
    );
  }

  /**
   * Reads up to `limit` dead letters without consuming them: they are received with a zero
   * visibility timeout, so they stay available to other readers and to redrive.
   */
  async peekDeadLetters(name: AdminQueue, limit: number): Promise<DeadLetter[]> {
    const dlqUrl = await this.dlqUrl(name);
    const seen = new Map<string, DeadLetter>();
    for (let round = 0; round < 10 && seen.size < limit; round++) {
      const messages = await this.receive(dlqUrl, Math.min(10, limit - seen.size), 0);
      const fresh = messages
        .map((message) => this.toDeadLetter(message))
        .filter((letter) => !seen.has(letter.messageId));
      if (fresh.length === 0) break;
      for (const letter of fresh) seen.set(letter.messageId, letter);
    }
    return [...seen.values()];
  }

  /** Moves up to `max` dead letters back to their source queue. Returns how many moved. */
  async redrive(name: AdminQueue, max: number, actor: string): Promise<number> {
    const queue = await this.resolve(name);
    const dlqUrl = await this.dlqUrl(name);
    let moved = 0;
    while (moved < max) {
      const messages = await this.receive(dlqUrl, Math.min(10, max - moved), 30);
      if (messages.length === 0) break;
      const sent = await this.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: messages.map((message, index) => ({
            Id: String(index),
            MessageBody: message.Body ?? '',
            MessageAttributes: Object.fromEntries(
              Object.entries(message.MessageAttributes ?? {}).filter(
                ([key]) => !key.startsWith(DEAD_LETTER_ATTRIBUTE_PREFIX),
              ),
            ),
          })),
        }),
      );
      const ok = new Set((sent.Successful ?? []).map((entry) => Number(entry.Id)));
      // Only what reached the source queue leaves the DLQ; the rest reappears there after 30 s.
      const done = messages.filter((_, index) => ok.has(index));
      if (done.length > 0) {
        await this.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: dlqUrl,
            Entries: done.map((message, index) => ({
              Id: String(index),
              ReceiptHandle: message.ReceiptHandle,
            })),
          }),
        );
      }
      moved += done.length;
      if (done.length < messages.length) break;
    }
    this.logger.log({ msg: 'audit: dead letters redriven', actor, queue: name, moved });
    return moved;
  }

  onApplicationShutdown(): void {
    this.sqs.destroy();
  }

  private async dlqUrl(name: AdminQueue): Promise<string> {
    const { dlqUrl } = await this.resolve(name);
    if (!dlqUrl) throw new NotFoundException(`queue ${name} has no dead-letter queue (no redrive policy)`);
    return dlqUrl;
  }

  private resolve(name: AdminQueue): Promise<Resolved> {
    let resolved = this.resolved.get(name);
    if (!resolved) {
      resolved = this.lookUp(name);
      resolved.catch(() => this.resolved.delete(name));
      this.resolved.set(name, resolved);
    }
    return resolved;
  }

  private async lookUp(name: AdminQueue): Promise<Resolved> {
    const url = await resolveQueueUrl(
      this.sqs,
      name === 'jobs' ? this.config.SQS_JOBS_QUEUE : this.config.SQS_EMAIL_QUEUE,
    );
    const { Attributes } = await this.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['RedrivePolicy'] }),
    );
    if (!Attributes?.RedrivePolicy) return { url, dlqUrl: null, maxReceiveCount: null };
    const policy = JSON.parse(Attributes.RedrivePolicy) as {
      deadLetterTargetArn: string;
      maxReceiveCount: string | number;
    };
    const dlqName = policy.deadLetterTargetArn.slice(policy.deadLetterTargetArn.lastIndexOf(':') + 1);
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: dlqName }));
    return { url, dlqUrl: QueueUrl ?? null, maxReceiveCount: Number(policy.maxReceiveCount) };
  }

  private async depth(url: string): Promise<QueueDepth> {
    const { Attributes = {} } = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    return {
      url,
      visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  }

  private async receive(url: string, max: number, visibilityTimeout: number): Promise<Message[]> {
    const { Messages = [] } = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: max,
        VisibilityTimeout: visibilityTimeout,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
    );
    return Messages;
  }

  private toDeadLetter(message: Message): DeadLetter {
    const attribute = (key: string) =>
      message.MessageAttributes?.[`${DEAD_LETTER_ATTRIBUTE_PREFIX}${key}`]?.StringValue ?? null;
    const sent = message.Attributes?.SentTimestamp;
    return {
      messageId: message.MessageId ?? '',
      body: message.Body ?? '',
      reason: attribute('dead-letter-reason'),
      sourceMessageId: attribute('source-message-id'),
      receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 0),
      sentAt: sent ? new Date(Number(sent)).toISOString() : null,
    };
  }
}
