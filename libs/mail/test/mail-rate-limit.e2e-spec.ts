import { randomUUID } from 'node:crypto';
import { GetAccountCommand } from '@aws-sdk/client-sesv2';
import { MailRateLimiter, MailService } from '../src';
import {
  createMailTestApp,
  emailsTo,
  emulatorSesClient,
  env,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';

const RATE = 5;
const INTERVAL_MS = 1000 / RATE;

describe('rate limit shared by two MailService instances (Redis)', () => {
  let a: MailTestApp;
  let b: MailTestApp;

  beforeAll(async () => {
    // Two apps, as two worker processes would be: separate clients, same Redis and key prefix.
    const shared = {
      redisKeyPrefix: `${env('REDIS_KEY_PREFIX')}mail-rate:${randomUUID().slice(0, 8)}:`,
      rateLimit: {
        maxSendRate: RATE,
        burst: 1,
        perRecipient: { limit: 1, windowMs: 3_600_000 },
        maxWaitMs: 5_000,
      },
    };
    a = await createMailTestApp(shared);
    b = await createMailTestApp(shared);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('spaces sends from both instances by the global rate', async () => {
    const sends = [a, b, a, b, a, b].map((t) =>
      t.app
        .get(MailService)
        .send({ idempotencyKey: uniqueKey('rate'), to: uniqueAddress('rate'), subject: 'S', text: 'T' }),
    );
    const results = await Promise.all(sends);

    expect(results.map((result) => result.status)).toEqual(Array(6).fill('sent'));
    const slots = results.map((result) => result.slotAt!.getTime()).sort((x, y) => x - y);
    // Slots are computed on the Redis clock by one script: two unshared limiters would hand out equal slots.
    for (let i = 1; i < slots.length; i++)
      expect(slots[i] - slots[i - 1]).toBeGreaterThanOrEqual(INTERVAL_MS);
  });

  it('caps each recipient across instances', async () => {
    const to = uniqueAddress('capped');
    const first = await a.app
      .get(MailService)
      .send({ idempotencyKey: uniqueKey('cap'), to, subject: 'One', text: 'T' });
    const second = await b.app
      .get(MailService)
      .send({ idempotencyKey: uniqueKey('cap'), to, subject: 'Two', text: 'T' });
    const other = await b.app
      .get(MailService)
      .send({ idempotencyKey: uniqueKey('cap'), to: uniqueAddress('free'), subject: 'Three', text: 'T' });

    expect(first.status).toBe('sent');
    expect(second).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('rate limit'),
    });
    expect(other.status).toBe('sent');
    const emails = await emailsTo(to);
    expect(emails.map((email) => email.subject)).toEqual(['One']);
  });

  it("takes the rate from SES GetAccount's MaxSendRate when none is configured", async () => {
    const client = emulatorSesClient();
    const { SendQuota } = await client.send(new GetAccountCommand({}));
    client.destroy();
    expect(SendQuota?.MaxSendRate).toEqual(expect.any(Number));

    const t = await createMailTestApp({ rateLimit: { fallbackMaxSendRate: 0.5 } });
    try {
      await expect(t.app.get(MailRateLimiter).maxSendRate()).resolves.toBe(SendQuota?.MaxSendRate);
    } finally {
      await t.close();
    }
  });
});
