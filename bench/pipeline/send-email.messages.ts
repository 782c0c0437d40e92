import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type JobMessage, trackingEnvSchema, trackingOptionsFromEnv, type User } from '@once/platform';
import { LinkBuilder } from '@once/tracking';
import { jobEmail } from '../../apps/worker/src/jobs/job-email.template';
import { withDatabase } from '../../tools/chaos/postgres.database';

type Recipient = Pick<User, 'id' | 'email' | 'name'>;

/** The subscribed users in id order, as the fan-out pages through them. */
export async function subscribedUsers(databaseUrl: string): Promise<Recipient[]> {
  return withDatabase(databaseUrl, (db) =>
    db.query('SELECT id::text AS id, email, name FROM users WHERE subscribed ORDER BY id'),
  );
}

/**
 * The send-email bodies the worker's fan-out enqueues for `job` (same template, same signed link
 * built with the worker's default tracking settings, same `u<id>` entry ids).
 */
export function fanoutBodies(
  job: JobMessage,
  users: readonly Recipient[],
): Array<{ id: string; body: string }> {
  const links = new LinkBuilder(trackingOptionsFromEnv(trackingEnvSchema.parse({})));
  return users.map((user) => ({ id: `u${user.id}`, body: JSON.stringify(jobEmail(job, user, links)) }));
}

/** Sends the bodies in batches of 10, `parallel` batches at a time; throws if SQS refuses any entry. */
export async function enqueue(
  sqs: SQSClient,
  queueUrl: string,
  messages: ReadonlyArray<{ id: string; body: string }>,
  parallel = 8,
): Promise<void> {
  const batches: Array<Array<{ id: string; body: string }>> = [];
  for (let i = 0; i < messages.length; i += 10) batches.push(messages.slice(i, i + 10));
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      const { Failed } = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((message) => ({ Id: message.id, MessageBody: message.body })),
        }),
      );
      if (Failed?.length) throw new Error(`SQS refused ${Failed.length} entries: ${Failed[0].Message ?? ''}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
}
