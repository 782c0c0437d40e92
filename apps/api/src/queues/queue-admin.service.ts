import {
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Inject, Injectable, Logger, NotFoundException, OnApplicationShutdown } from '@nestjs/common';
import {
  DEAD_LETTER_ATTRIBUTES,
  readQueueDepth,
  RedrivePolicyReader,
  type QueueDepth as SqsQueueDepth,
} from '@once/dedup/sqs';
import { APP_CONFIG, createSqsClient, resolveQueueUrl } from '@once/platform';
import { ApiConfig } from '../config/api.config';

/** Logical queue names the admin API knows. */
export const ADMIN_QUEUES = ['jobs', 'send-email'] as const;
export type AdminQueue = (typeof ADMIN_QUEUES)[number];

export interface QueueDepth extends SqsQueueDepth {
  url: string;
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

// Attributes the dedup lib adds (dead-letter reason and sources, deferral origin); dropped again when a message is redriven.
const OUR_ATTRIBUTE_PREFIX = 'once-';

/** Queue depths, dead-letter peeks and redrive, straight against SQS (works on the emulator too). */
@Injectable()
export class QueueAdminService implements OnApplicationShutdown {
  private readonly logger = new Logger(QueueAdminService.name);
  private readonly sqs: SQSClient;
  private readonly resolved = new Map<AdminQueue, Promise<string>>();
  private readonly redrivePolicies = new RedrivePolicyReader();

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
                ([key]) => !key.startsWith(OUR_ATTRIBUTE_PREFIX),
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

  /** The queue's URL (resolved once), its redrive policy and DLQ (read through the SQS adapter's cache). */
  private async resolve(name: AdminQueue): Promise<Resolved> {
    let url = this.resolved.get(name);
    if (!url) {
      url = resolveQueueUrl(
        this.sqs,
        name === 'jobs' ? this.config.SQS_JOBS_QUEUE : this.config.SQS_EMAIL_QUEUE,
      );
      url.catch(() => this.resolved.delete(name));
      this.resolved.set(name, url);
    }
    const queue = { sqs: this.sqs, queueUrl: await url };
    const policy = await this.redrivePolicies.policyOf(queue);
    return {
      url: queue.queueUrl,
      dlqUrl: policy ? await this.redrivePolicies.deadLetterUrlOf(queue) : null,
      maxReceiveCount: policy?.maxReceiveCount ?? null,
    };
  }

  private async depth(url: string): Promise<QueueDepth> {
    return { url, ...(await readQueueDepth(this.sqs, url)) };
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
    const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue ?? null;
    const sent = message.Attributes?.SentTimestamp;
    return {
      messageId: message.MessageId ?? '',
      body: message.Body ?? '',
      reason: attribute(DEAD_LETTER_ATTRIBUTES.reason),
      sourceMessageId: attribute(DEAD_LETTER_ATTRIBUTES.sourceMessageId),
      receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 0),
      sentAt: sent ? new Date(Number(sent)).toISOString() : null,
    };
  }
}
