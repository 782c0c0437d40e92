import {
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import type { AwsEnv } from '../config/config.schemas';

/** Region, endpoint and (optional, else the default chain) credentials for an AWS SDK v3 client. */
export function awsClientConfig(aws: AwsEnv, endpoint: string | undefined) {
  const credentials =
    aws.AWS_ACCESS_KEY_ID && aws.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: aws.AWS_ACCESS_KEY_ID, secretAccessKey: aws.AWS_SECRET_ACCESS_KEY }
      : undefined;
  return { region: aws.AWS_REGION, endpoint, credentials };
}

/** The longest ReceiveMessage long poll SQS allows (WaitTimeSeconds, and the queue attribute's maximum). */
export const SQS_MAX_WAIT_SECONDS = 20;

/** Hard deadlines of SQS calls (each covers the SDK's retries of that call). */
export interface SqsDeadlines {
  /** Every call but ReceiveMessage. Default 10 s. */
  requestMs: number;
  /** ReceiveMessage: its WaitTimeSeconds (20 s when unset: the queue's wait applies) plus this. Default 10 s. */
  receiveMarginMs: number;
}

export const DEFAULT_SQS_DEADLINES: SqsDeadlines = { requestMs: 10_000, receiveMarginMs: 10_000 };

/** An SQS call got no answer within its deadline and was aborted. SQS may or may not have done it. */
export class SqsDeadlineError extends Error {
  constructor(
    readonly operation: string,
    readonly deadlineMs: number,
  ) {
    super(`SQS ${operation} got no answer within its ${deadlineMs} ms deadline; the call was aborted`);
    this.name = 'TimeoutError';
  }
}

/** The deadline of one call: a long poll gets its wait plus a margin, anything else `requestMs`. */
export function sqsCallDeadlineMs(command: object, deadlines: SqsDeadlines = DEFAULT_SQS_DEADLINES): number {
  if (command instanceof ReceiveMessageCommand) {
    const waitSeconds = Math.min(command.input.WaitTimeSeconds ?? SQS_MAX_WAIT_SECONDS, SQS_MAX_WAIT_SECONDS);
    return Math.max(waitSeconds, 0) * 1_000 + deadlines.receiveMarginMs;
  }
  return deadlines.requestMs;
}

interface CallerOptions {
  abortSignal?: {
    aborted: boolean;
    reason?: unknown;
    addEventListener?: unknown;
    removeEventListener?: unknown;
  };
  [option: string]: unknown;
}

type Callback = (error: unknown, output?: unknown) => void;

/**
 * An SQSClient whose every call has a hard deadline ({@link sqsCallDeadlineMs}): at the deadline
 * the call's AbortSignal aborts the request (the HTTP handler destroys the socket) and the call
 * rejects with {@link SqsDeadlineError}. A caller's own abortSignal (sqs-consumer's stop) still works.
 */
class DeadlineSqsClient extends SQSClient {
  constructor(
    config: SQSClientConfig,
    private readonly deadlines: SqsDeadlines,
  ) {
    super(config);
  }

  // The SDK's send has three overloads (promise, callback, options + callback); all get the deadline.
  override send(command: never, optionsOrCb?: unknown, cb?: unknown): never {
    const callback = (typeof optionsOrCb === 'function' ? optionsOrCb : cb) as Callback | undefined;
    const options =
      typeof optionsOrCb === 'function' ? undefined : (optionsOrCb as CallerOptions | undefined);
    const result = this.sendWithDeadline(command, options);
    if (!callback) return result as never;
    result.then(
      (output) => callback(null, output),
      (error: unknown) => callback(error),
    );
    return undefined as never;
  }

  private sendWithDeadline(command: object, options: CallerOptions | undefined): Promise<unknown> {
    const deadlineMs = sqsCallDeadlineMs(command, this.deadlines);
    const operation = command.constructor.name.replace(/Command$/, '');
    const deadlineError = new SqsDeadlineError(operation, deadlineMs);
    const controller = new AbortController();
    const caller = options?.abortSignal;
    const forward = () => controller.abort(caller?.reason);
    const listens = typeof caller?.addEventListener === 'function';
    if (caller?.aborted) forward();
    else if (listens) (caller as AbortSignal).addEventListener('abort', forward, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        controller.abort(deadlineError);
        reject(deadlineError);
      }, deadlineMs);
    });
    const call = super.send(command as never, { ...options, abortSignal: controller.signal } as never);
    return Promise.race([call, deadline]).finally(() => {
      clearTimeout(timer);
      // sqs-consumer passes one signal to every call: do not pile up listeners on it.
      if (listens) (caller as AbortSignal).removeEventListener('abort', forward);
    });
  }
}

/**
 * An SQSClient with an explicit endpoint when one is configured. Every consumer and producer
 * must use it: emulators hand out queue URLs whose host does not resolve. Every call has a hard
 * deadline (see {@link SqsDeadlines}); a ReceiveMessage long poll's deadline exceeds its wait.
 */
export function createSqsClient(aws: AwsEnv, deadlines: Partial<SqsDeadlines> = {}): SQSClient {
  const resolved = { ...DEFAULT_SQS_DEADLINES, ...deadlines };
  const longestCallMs = Math.max(resolved.requestMs, SQS_MAX_WAIT_SECONDS * 1_000 + resolved.receiveMarginMs);
  return new DeadlineSqsClient(
    {
      ...awsClientConfig(aws, aws.SQS_ENDPOINT),
      requestHandler: {
        // Per attempt, a backstop under the per-call deadline; without throwOnRequestTimeout this
        // handler version only logs a warning when requestTimeout passes.
        requestTimeout: longestCallMs,
        throwOnRequestTimeout: true,
        connectionTimeout: Math.min(5_000, resolved.requestMs),
      },
    },
    resolved,
  );
}

/** Accepts a queue URL as is; resolves a queue name with GetQueueUrl. */
export async function resolveQueueUrl(sqs: SQSClient, nameOrUrl: string): Promise<string> {
  if (/^https?:\/\//.test(nameOrUrl)) return nameOrUrl;
  try {
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: nameOrUrl }));
    if (!QueueUrl) throw new Error('empty QueueUrl');
    return QueueUrl;
  } catch (error) {
    throw new Error(`Cannot resolve SQS queue "${nameOrUrl}": ${(error as Error).message}`, { cause: error });
  }
}
