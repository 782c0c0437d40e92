import { MissingIdempotencyKeyError } from '../dedup.errors';

interface WithMessageId {
  MessageId?: string;
}

/** Messages of one receive batch that share an idempotency key: the leader runs, followers ride along. */
export interface KeyedGroup<M> {
  readonly key: string;
  readonly leader: M;
  readonly followers: M[];
}

export interface BatchPlan<M> {
  /** One group per distinct key, in order of first appearance. */
  readonly groups: KeyedGroup<M>[];
  readonly missing: { readonly message: M; readonly error: MissingIdempotencyKeyError }[];
}

/** Groups a receive batch by key (collapsing in-batch duplicates) and sets aside messages without one. */
export function planBatch<M>(messages: readonly M[], keyOf: (message: M) => string): BatchPlan<M> {
  const groups = new Map<string, KeyedGroup<M>>();
  const missing: BatchPlan<M>['missing'] = [];
  for (const message of messages) {
    let key: string;
    try {
      key = keyOf(message);
    } catch (error) {
      if (!(error instanceof MissingIdempotencyKeyError)) throw error;
      missing.push({ message, error });
      continue;
    }
    const group = groups.get(key);
    if (group) group.followers.push(message);
    else groups.set(key, { key, leader: message, followers: [] });
  }
  return { groups: [...groups.values()], missing };
}

/**
 * sqs-consumer 11 single-message semantics: a handler result that is not an object acknowledges
 * the message; an object acknowledges it only if it is the message (same MessageId).
 */
export function isAcknowledged(result: unknown, message: WithMessageId): boolean {
  if (!(result instanceof Object)) return true;
  return (result as WithMessageId).MessageId === message.MessageId;
}

/**
 * sqs-consumer 11 batch semantics, per given message: a result that is not an object acknowledges
 * the whole batch; an array acknowledges the messages in it (same object or MessageId); any other
 * object acknowledges none.
 */
export function acknowledgedInBatch<M extends WithMessageId>(
  result: unknown,
  given: readonly M[],
): boolean[] {
  if (!(result instanceof Object)) return given.map(() => true);
  if (!Array.isArray(result)) return given.map(() => false);
  const objects = new Set<unknown>(result);
  const ids = new Set(
    result.map((entry: unknown) => (entry as WithMessageId | undefined)?.MessageId).filter(Boolean),
  );
  return given.map((message) => objects.has(message) || (!!message.MessageId && ids.has(message.MessageId)));
}

/**
 * The list to hand back to sqs-consumer: each MessageId once (DeleteMessageBatch rejects repeated
 * ids; a second receipt of the same message is simply received again and acknowledged then).
 */
export function ackList<M extends WithMessageId>(messages: readonly M[]): M[] {
  const seen = new Set<string>();
  return messages.filter((message) => {
    if (!message.MessageId) return false;
    if (seen.has(message.MessageId)) return false;
    seen.add(message.MessageId);
    return true;
  });
}
