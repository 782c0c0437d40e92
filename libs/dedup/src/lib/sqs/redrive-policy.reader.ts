import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import type { SqsQueueRef } from './sqs-queue.ref';

/** A queue's redrive policy: where its dead letters go and after how many receives. */
export interface Redrive {
  readonly deadLetterTargetArn: string;
  readonly maxReceiveCount: number;
}

/** A queue named by an SQS ARN (`arn:<partition>:sqs:<region>:<account>:<name>`). */
export interface SqsQueueArn {
  readonly region: string;
  readonly account: string;
  readonly name: string;
}

/** A redrive policy (or its dead-letter ARN) that cannot be used as it stands: a configuration error. */
export class MalformedRedrivePolicyError extends Error {
  constructor(queueUrl: string, detail: string, options?: ErrorOptions) {
    super(`queue ${queueUrl} has a malformed redrive policy: ${detail}`, options);
    this.name = 'MalformedRedrivePolicyError';
  }
}

/** The queue's redrive policy is read again after this long (it can be changed at runtime). */
export const REDRIVE_TTL_MS = 5 * 60_000;

/** The parts of an SQS queue ARN, or `undefined` when `arn` is not one. */
export function parseSqsQueueArn(arn: string): SqsQueueArn | undefined {
  const [prefix, partition, service, region, account, name, ...rest] = arn.split(':');
  if (prefix !== 'arn' || !partition || service !== 'sqs' || !region || !account || !name || rest.length > 0)
    return undefined;
  return { region, account, name };
}

/**
 * A `RedrivePolicy` queue attribute (a JSON string) as a {@link Redrive}.
 * @throws MalformedRedrivePolicyError when it is not JSON, names no SQS ARN or no receive count.
 */
export function parseRedrivePolicy(queueUrl: string, raw: string): Redrive {
  let policy: unknown;
  try {
    policy = JSON.parse(raw);
  } catch (error) {
    throw new MalformedRedrivePolicyError(queueUrl, 'not JSON', { cause: error });
  }
  const { deadLetterTargetArn: arn, maxReceiveCount: count } = (policy ?? {}) as Record<string, unknown>;
  if (typeof arn !== 'string' || !parseSqsQueueArn(arn))
    throw new MalformedRedrivePolicyError(
      queueUrl,
      `deadLetterTargetArn ${JSON.stringify(arn)} is no SQS queue ARN`,
    );
  const maxReceiveCount = typeof count === 'string' || typeof count === 'number' ? Number(count) : Number.NaN;
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1)
    throw new MalformedRedrivePolicyError(
      queueUrl,
      `maxReceiveCount ${JSON.stringify(count)} is no positive integer`,
    );
  return { deadLetterTargetArn: arn, maxReceiveCount };
}

/**
 * Reads queues' redrive policies and finds their dead-letter queues, with caches: a policy for
 * {@link REDRIVE_TTL_MS}, a dead-letter queue's URL for good. A failed read is not cached. The
 * dead-letter queue is looked up in the account its ARN names, so a DLQ owned by another account
 * is found (the caller's credentials need access to it).
 */
export class RedrivePolicyReader {
  private readonly policies = new Map<
    string,
    { readonly at: number; readonly policy: Promise<Redrive | null> }
  >();
  private readonly dlqUrls = new Map<string, Promise<string>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The queue's redrive policy; `null` when it has none. Rejects on a failed read or a malformed policy. */
  policyOf(queue: SqsQueueRef): Promise<Redrive | null> {
    const cached = this.policies.get(queue.queueUrl);
    if (cached && this.now() - cached.at < REDRIVE_TTL_MS) return cached.policy;
    const policy = readRedrivePolicy(queue);
    policy.catch(() => this.policies.delete(queue.queueUrl));
    this.policies.set(queue.queueUrl, { at: this.now(), policy });
    return policy;
  }

  /** The URL of the queue's dead-letter queue; `null` when the queue has no redrive policy. */
  async deadLetterUrlOf(queue: SqsQueueRef): Promise<string | null> {
    const policy = await this.policyOf(queue);
    return policy ? this.urlOfArn(queue, policy.deadLetterTargetArn) : null;
  }

  /** Like {@link deadLetterUrlOf}, but a queue without a redrive policy is an error. */
  async requireDeadLetterUrl(queue: SqsQueueRef): Promise<string> {
    const url = await this.deadLetterUrlOf(queue);
    if (url === null)
      throw new Error(`queue ${queue.queueUrl} has no redrive policy: configure a dead-letter queue`);
    return url;
  }

  private urlOfArn({ sqs, queueUrl }: SqsQueueRef, arn: string): Promise<string> {
    let url = this.dlqUrls.get(arn);
    if (!url) {
      const { account, name } = parseSqsQueueArn(arn) ?? {};
      if (!account || !name) throw new MalformedRedrivePolicyError(queueUrl, `${arn} is no SQS queue ARN`);
      url = sqs
        .send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))
        .then(({ QueueUrl }) => {
          if (!QueueUrl) throw new Error(`dead-letter queue ${name} (account ${account}) not found`);
          return QueueUrl;
        });
      url.catch(() => this.dlqUrls.delete(arn));
      this.dlqUrls.set(arn, url);
    }
    return url;
  }
}

async function readRedrivePolicy(queue: SqsQueueRef): Promise<Redrive | null> {
  const { Attributes } = await queue.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queue.queueUrl, AttributeNames: ['RedrivePolicy'] }),
  );
  return Attributes?.RedrivePolicy ? parseRedrivePolicy(queue.queueUrl, Attributes.RedrivePolicy) : null;
}
