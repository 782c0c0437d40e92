/** What happened to one SQS message, as the fault proxy (or the harness) saw it. */
export interface TrailEvent {
  /** Milliseconds since the run started. */
  atMs: number;
  /** The worker (proxy listener) that made the call, or `chaos` for the harness's own sends. */
  by: string;
  kind: 'sent' | 'received' | 'visibility' | 'deleted' | 'delete-failed';
  /** `ApproximateReceiveCount` on a receive. */
  receiveCount?: number;
  /** Visibility timeout asked for, or `DelaySeconds` of a send. */
  seconds?: number;
  /** ChangeMessageVisibility (sqs-consumer's, on a handler error) or ChangeMessageVisibilityBatch (the dedup lib's). */
  api?: 'single' | 'batch';
  /** A visibility change SQS refused. */
  failed?: boolean;
}

/** {@link MessageTrail.receiveSummary}. */
export interface ReceiveSummary {
  /** Messages received at least once. */
  messages: number;
  receives: number;
  /** What ended each receive (`dedup deferral (ChangeMessageVisibilityBatch)`, `failed delete`, …). */
  ends: Record<string, number>;
  /** Messages received `maxReceiveCount - 1` times or more: one bad answer from the DLQ. */
  nearLimit: number;
  nearLimitEnds: Record<string, number>;
}

/** One message's history and the eventId of its body. */
export interface MessageHistory {
  messageId: string;
  queue: string;
  eventId?: string;
  events: TrailEvent[];
}

function eventIdOf(body: string | undefined): string | undefined {
  try {
    const eventId = (JSON.parse(body ?? '') as { eventId?: unknown }).eventId;
    return typeof eventId === 'string' ? eventId : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every send, receive (with its receive count), visibility change and delete of every message that
 * went through the SQS fault proxy, by MessageId and by eventId: the evidence for a message that
 * ended in a dead-letter queue.
 */
export class MessageTrail {
  private readonly messages = new Map<string, MessageHistory>();
  private readonly byHandle = new Map<string, string>();
  private readonly byEventId = new Map<string, Set<string>>();

  constructor(private readonly startedAt: number) {}

  sent(
    queue: string,
    messageId: string | undefined,
    body: string | undefined,
    by: string,
    delaySeconds?: number,
  ): void {
    if (!messageId) return;
    this.push(queue, messageId, body, { by, kind: 'sent', seconds: delaySeconds || undefined });
  }

  received(
    queue: string,
    message: {
      MessageId?: string;
      ReceiptHandle?: string;
      Body?: string;
      Attributes?: Record<string, string>;
    },
    by: string,
  ): void {
    if (!message.MessageId) return;
    if (message.ReceiptHandle) this.byHandle.set(message.ReceiptHandle, message.MessageId);
    const count = Number(message.Attributes?.ApproximateReceiveCount);
    this.push(queue, message.MessageId, message.Body, {
      by,
      kind: 'received',
      receiveCount: Number.isFinite(count) ? count : undefined,
    });
  }

  visibility(
    receiptHandle: string,
    seconds: number,
    api: 'single' | 'batch',
    by: string,
    failed: boolean,
  ): void {
    this.byReceipt(receiptHandle, { by, kind: 'visibility', seconds, api, failed: failed || undefined });
  }

  deleted(receiptHandle: string, by: string, failed: boolean): void {
    this.byReceipt(receiptHandle, { by, kind: failed ? 'delete-failed' : 'deleted' });
  }

  /** Every message whose body carries `eventId` (original, copies, re-sends), oldest first. */
  forEventId(eventId: string): MessageHistory[] {
    return [...(this.byEventId.get(eventId) ?? [])]
      .map((id) => this.messages.get(id))
      .filter((history): history is MessageHistory => history !== undefined)
      .sort((a, b) => (a.events[0]?.atMs ?? 0) - (b.events[0]?.atMs ?? 0));
  }

  forMessageId(messageId: string): MessageHistory | undefined {
    return this.messages.get(messageId);
  }

  /**
   * What ended every receive of every message on `queue`, tallied, for all messages and for those
   * that came within one receive of `maxReceiveCount`: which answers spend the redrive budget.
   */
  receiveSummary(queue: string, maxReceiveCount: number): ReceiveSummary {
    const summary: ReceiveSummary = { messages: 0, receives: 0, ends: {}, nearLimit: 0, nearLimitEnds: {} };
    for (const history of this.messages.values()) {
      if (history.queue !== queue) continue;
      const ends = receiveEnds(history).map(({ end }) => end.replace(/ \d+s/g, ''));
      if (ends.length === 0) continue;
      summary.messages++;
      summary.receives += ends.length;
      const near = ends.length >= maxReceiveCount - 1;
      if (near) summary.nearLimit++;
      for (const end of ends) {
        summary.ends[end] = (summary.ends[end] ?? 0) + 1;
        if (near) summary.nearLimitEnds[end] = (summary.nearLimitEnds[end] ?? 0) + 1;
      }
    }
    return summary;
  }

  private byReceipt(receiptHandle: string, event: Omit<TrailEvent, 'atMs'>): void {
    const messageId = this.byHandle.get(receiptHandle);
    const history = messageId ? this.messages.get(messageId) : undefined;
    history?.events.push({ atMs: Date.now() - this.startedAt, ...event });
  }

  private push(
    queue: string,
    messageId: string,
    body: string | undefined,
    event: Omit<TrailEvent, 'atMs'>,
  ): void {
    let history = this.messages.get(messageId);
    if (!history) {
      history = { messageId, queue, eventId: eventIdOf(body), events: [] };
      this.messages.set(messageId, history);
      if (history.eventId) {
        const ids = this.byEventId.get(history.eventId) ?? new Set<string>();
        ids.add(messageId);
        this.byEventId.set(history.eventId, ids);
      }
    }
    history.events.push({ atMs: Date.now() - this.startedAt, ...event });
  }
}

/** One line per event: `12.3s w2 received #3`, `12.4s w2 visibility 11s (batch)`. */
export function formatHistory(history: MessageHistory): string {
  const events = history.events.map((event) => {
    const at = `${(event.atMs / 1000).toFixed(1)}s ${event.by}`;
    switch (event.kind) {
      case 'sent':
        return `${at} sent${event.seconds ? ` (delay ${event.seconds}s)` : ''}`;
      case 'received':
        return `${at} received #${event.receiveCount ?? '?'}`;
      case 'visibility':
        return `${at} visibility ${event.seconds}s (${event.api === 'single' ? 'ChangeMessageVisibility' : 'Batch'}${event.failed ? ', refused' : ''})`;
      default:
        return `${at} ${event.kind}`;
    }
  });
  return `${history.queue} ${history.messageId}: ${events.join('; ')}`;
}

/** What ended one receive: the first answer the receiver gave before the message came back. */
function endOfReceive(events: readonly TrailEvent[], receive: TrailEvent): string {
  const answers = events.filter((event) => event.by === receive.by && event.kind !== 'received');
  const parts: string[] = [];
  const heartbeats = answers.filter(
    (event) => event.kind === 'visibility' && event.api === 'batch' && event.atMs - receive.atMs > 1500,
  ).length;
  for (const event of answers) {
    if (event.kind === 'delete-failed') parts.push('failed delete');
    else if (event.kind === 'deleted') parts.push('deleted');
    else if (event.kind === 'visibility' && event.api === 'single')
      parts.push(`visibility change ${event.seconds}s (ChangeMessageVisibility)`);
    else if (event.kind === 'visibility' && event.atMs - receive.atMs <= 1500)
      parts.push(`dedup deferral ${event.seconds}s (ChangeMessageVisibilityBatch)`);
  }
  if (heartbeats > 0) parts.push(`${heartbeats} lease extension${heartbeats > 1 ? 's' : ''}`);
  return parts.length > 0 ? [...new Set(parts)].join(' + ') : 'no answer (visibility expired)';
}

function receiveEnds(history: MessageHistory): Array<{ receive: TrailEvent; end: string }> {
  const receives = history.events
    .map((event, i) => ({ event, i }))
    .filter(({ event }) => event.kind === 'received');
  return receives.map(({ event, i }, n) => {
    const next = receives[n + 1]?.i ?? history.events.length;
    return { receive: event, end: endOfReceive(history.events.slice(i + 1, next), event) };
  });
}

/**
 * Every receive of the message ended in nothing but failed deletes: the fault model alone moved it
 * (SQS would not let any consumer delete it), whatever the system did.
 */
export function onlyFailedDeletes(history: MessageHistory | undefined): boolean {
  const ends = history ? receiveEnds(history) : [];
  return ends.length > 0 && ends.every(({ end }) => end === 'failed delete');
}

/**
 * Why a message ended in a DLQ, from its trail: a worker's own dead-letter reason, or, for SQS's
 * redrive, what ended each of its receives (`#3 w2 dedup deferral 11s`), tallied.
 */
export function diagnoseDeadLetter(
  history: MessageHistory | undefined,
  reason: string | null,
  maxReceiveCount: number,
): string {
  if (reason) return `dead-lettered by a worker: ${reason}`;
  if (!history) return 'SQS redrive; the proxy never saw this message (no trail)';
  const ends = receiveEnds(history);
  const receives = ends;
  const tally = new Map<string, number>();
  for (const { end } of ends) {
    const kind = end.replace(/ \d+s/g, '');
    tally.set(kind, (tally.get(kind) ?? 0) + 1);
  }
  return (
    `SQS redrive after ${receives.length} receives (maxReceiveCount ${maxReceiveCount}): ` +
    [...tally.entries()].map(([kind, count]) => `${count}× ${kind}`).join(', ') +
    ` | ${ends
      .map(
        ({ receive, end }) =>
          `#${receive.receiveCount ?? '?'} ${receive.by} ${(receive.atMs / 1000).toFixed(1)}s: ${end}`,
      )
      .join('; ')}`
  );
}
