import {
  DeleteMessageCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { messagesLeft, readQueueDepth } from '@once/dedup/sqs';
import type { DataSource } from 'typeorm';
import type { NaiveReport } from './chaos.report';
import { startEmulatorHost } from './emulator.host';
import { sleep } from './net.util';
import { dropDatabase, recreateDatabase, withDatabase } from './postgres.database';
import { SeededRandom } from './seeded.random';

export interface NaiveOptions {
  /** Distinct events (one email each). */
  events: number;
  /** Concurrent consumers, each receiving batches of 10 and handling a batch concurrently (as sqs-consumer does). */
  consumers: number;
  /** Share of events enqueued a third time, at a random moment. */
  duplicateShare: number;
  seed: number;
  database: string;
  timeoutMs: number;
  verbose: boolean;
}

const QUEUE = 'naive-send-email';

/**
 * The approach Once replaces: "look the event up in a processed table, do the side effect, then
 * mark it processed", run by several consumers of a real fauxqs queue against a real Postgres
 * table, the side effect a real SendEmail to the SES emulator. Every event is enqueued twice (a job
 * that fired twice fans out twice, concurrently), a share of them a third time. No other fault.
 */
export async function runNaiveBaseline(options: NaiveOptions): Promise<NaiveReport> {
  const started = Date.now();
  const runId = `naive-${started}`;
  const random = new SeededRandom(options.seed);
  const log = (message: string) => {
    if (options.verbose)
      process.stderr.write(`[naive ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
  };
  const host = await startEmulatorHost({ visibilityTimeout: 30, maxReceiveCount: 5, queues: [QUEUE] });
  const database = `${options.database}_naive`;
  try {
    const url = await recreateDatabase(database);
    const credentials = {
      accessKeyId: host.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: host.env.AWS_SECRET_ACCESS_KEY,
    };
    const sqs = new SQSClient({ region: host.region, endpoint: host.sqsEndpoint, credentials });
    const ses = new SESv2Client({ region: host.region, endpoint: host.sesEndpoint, credentials });
    const queueUrl = host.queueUrls[QUEUE];
    const subject = `Naive baseline ${runId}`;
    const recipient = (event: number) => `naive-${event}@example.com`;
    try {
      return await withDatabase(
        url,
        async (db) => {
          await db.query(
            'CREATE TABLE processed (event_id text PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())',
          );
          const events = Array.from({ length: options.events }, (_, i) => i + 1);
          const body = (event: number) =>
            JSON.stringify({ eventId: `naive:${runId}:${event}`, to: recipient(event) });
          const enqueue = async (order: number[]) => {
            for (let i = 0; i < order.length; i += 10) {
              await sqs.send(
                new SendMessageBatchCommand({
                  QueueUrl: queueUrl,
                  Entries: order
                    .slice(i, i + 10)
                    .map((event, j) => ({ Id: String(j), MessageBody: body(event) })),
                }),
              );
            }
          };
          const extra = random.sample(events, Math.ceil(events.length * options.duplicateShare));
          const messages = events.length * 2 + extra.length;

          let producing = true;
          const consumers = Array.from({ length: options.consumers }, () =>
            consume(sqs, ses, db, queueUrl, subject, () => producing),
          );
          const producers = Promise.all([enqueue(events), enqueue(events), enqueue(extra)]);
          await producers;
          log(`${messages} messages enqueued for ${events.length} events; ${options.consumers} consumers`);
          const deadline = started + options.timeoutMs;
          let quietSince: number | undefined;
          while (Date.now() < deadline) {
            const left = messagesLeft(await readQueueDepth(sqs, queueUrl), { withDelayed: false });
            if (left > 0) quietSince = undefined;
            else {
              quietSince ??= Date.now();
              if (Date.now() - quietSince > 1500) break;
            }
            await sleep(250);
          }
          producing = false;
          await Promise.all(consumers);

          const response = await fetch(`${host.sesEndpoint}/store`);
          const { emails } = (await response.json()) as {
            emails: Array<{ subject: string; destination: { to: string[] } }>;
          };
          const perRecipient = new Map<string, number>();
          for (const email of emails) {
            if (email.subject !== subject) continue;
            for (const to of email.destination.to) perRecipient.set(to, (perRecipient.get(to) ?? 0) + 1);
          }
          const counts = events.map((event) => perRecipient.get(recipient(event)) ?? 0);
          const report: NaiveReport = {
            events: events.length,
            messages,
            consumers: options.consumers,
            emails: counts.reduce((sum, count) => sum + count, 0),
            duplicates: counts.reduce((sum, count) => sum + Math.max(0, count - 1), 0),
            duplicateEvents: counts.filter((count) => count > 1).length,
            missing: counts.filter((count) => count === 0).length,
            durationMs: Date.now() - started,
          };
          log(`${report.emails} emails, ${report.duplicates} duplicates`);
          return report;
        },
        { poolSize: Math.min(50, options.consumers * 10) },
      );
    } finally {
      sqs.destroy();
      ses.destroy();
    }
  } finally {
    await host.stop();
    await dropDatabase(database).catch(() => undefined);
  }
}

async function consume(
  sqs: SQSClient,
  ses: SESv2Client,
  db: DataSource,
  queueUrl: string,
  subject: string,
  running: () => boolean,
): Promise<void> {
  const handle = async (message: Message) => {
    const { eventId, to } = JSON.parse(message.Body ?? '{}') as { eventId: string; to: string };
    // The pattern under test: look up, then act, then mark; two deliveries can both see "not processed".
    const seen: unknown[] = await db.query('SELECT 1 FROM processed WHERE event_id = $1', [eventId]);
    if (seen.length === 0) {
      await ses.send(
        new SendEmailCommand({
          FromEmailAddress: 'digest@once.local',
          Destination: { ToAddresses: [to] },
          Content: { Simple: { Subject: { Data: subject }, Body: { Text: { Data: eventId } } } },
        }),
      );
      await db.query('INSERT INTO processed (event_id) VALUES ($1) ON CONFLICT DO NOTHING', [eventId]);
    }
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
  };
  while (running()) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    await Promise.all(Messages.map(handle));
  }
}
