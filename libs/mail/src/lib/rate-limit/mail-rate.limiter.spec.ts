import { Logger } from '@nestjs/common';
import { resolveMailOptions } from '../mail.options';
import type { SesTransport } from '../ses/ses.transport';
import { withLocalRateFallback, withoutRecipientCap } from './local-fallback.budget';
import { MailRateLimiter } from './mail-rate.limiter';

const redis = { eval: () => undefined } as never;

describe('MailRateLimiter.maxSendRate', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('prefers the configured rate over GetAccount', async () => {
    const transport = { getMaxSendRate: jest.fn(async () => 14) };
    const options = resolveMailOptions({
      ses: { region: 'x' },
      redis,
      defaultFrom: 'a@b.io',
      rateLimit: { maxSendRate: 3 },
    });
    await expect(
      new MailRateLimiter(options, transport as unknown as SesTransport).maxSendRate(),
    ).resolves.toBe(3);
    expect(transport.getMaxSendRate).not.toHaveBeenCalled();
  });

  it("uses the account's MaxSendRate, asked once", async () => {
    const transport = { getMaxSendRate: jest.fn(async () => 14) };
    const limiter = new MailRateLimiter(
      resolveMailOptions({ ses: { region: 'x' }, redis, defaultFrom: 'a@b.io' }),
      transport as unknown as SesTransport,
    );
    await expect(limiter.maxSendRate()).resolves.toBe(14);
    await expect(limiter.maxSendRate()).resolves.toBe(14);
    expect(transport.getMaxSendRate).toHaveBeenCalledTimes(1);
  });

  it('falls back when GetAccount fails', async () => {
    const transport = { getMaxSendRate: jest.fn(async () => Promise.reject(new Error('AccessDenied'))) };
    const options = resolveMailOptions({
      ses: { region: 'x' },
      redis,
      defaultFrom: 'a@b.io',
      rateLimit: { fallbackMaxSendRate: 2 },
    });
    await expect(
      new MailRateLimiter(options, transport as unknown as SesTransport).maxSendRate(),
    ).resolves.toBe(2);
  });
});

describe('MailRateLimiter without Redis', () => {
  beforeAll(() => Logger.overrideLogger(false));

  const limiterWith = (redisStub: object) =>
    new MailRateLimiter(
      resolveMailOptions({
        ses: { region: 'x' },
        redis: redisStub as never,
        defaultFrom: 'a@b.io',
        rateLimit: { maxSendRate: 1000 },
      }),
      {} as SesTransport,
    );

  it('rejects (so the send fails retryable) unless the caller asked for the local fallback budget', async () => {
    const limiter = limiterWith({ status: 'ready', eval: () => Promise.reject(new Error('ECONNREFUSED')) });
    await expect(limiter.reserve(['a@b.io'])).rejects.toThrow('ECONNREFUSED');
    const granted = await withLocalRateFallback({ limit: 2, windowMs: 60_000 }, async () => [
      await limiter.reserve(['a@b.io']),
      await limiter.reserve(['a@b.io']),
      await limiter.reserve(['a@b.io']),
    ]);
    expect(granted.map((reservation) => reservation.granted)).toEqual([true, true, false]);
    // Spaced at the global rate (1000/s: 1 ms apart).
    expect(granted[1].slotAt.getTime() - granted[0].slotAt.getTime()).toBeGreaterThanOrEqual(1);
  });

  it('does not wait on a client that lost its connection', async () => {
    const evalCall = jest.fn(() => new Promise(() => undefined));
    const limiter = limiterWith({ status: 'reconnecting', eval: evalCall });
    await expect(limiter.reserve(['a@b.io'])).rejects.toThrow('not connected (reconnecting)');
    expect(evalCall).not.toHaveBeenCalled();
  });
});

describe('MailRateLimiter per-recipient cap', () => {
  it('passes a key per recipient, except inside withoutRecipientCap (admin mail): only the global key', async () => {
    const evalCall = jest.fn(async (..._args: unknown[]) => [1, 0, 0, 0]);
    const limiter = new MailRateLimiter(
      resolveMailOptions({
        ses: { region: 'x' },
        redis: { status: 'ready', eval: evalCall } as never,
        defaultFrom: 'a@b.io',
        rateLimit: { maxSendRate: 10, perRecipient: { limit: 3, windowMs: 60_000 } },
      }),
      {} as SesTransport,
    );
    await limiter.reserve(['a@b.io', 'c@d.io']);
    await withoutRecipientCap(() =>
      withLocalRateFallback({ limit: 1, windowMs: 1 }, () => limiter.reserve(['a@b.io'])),
    );
    await limiter.reserve(['a@b.io']);
    const keyCounts = evalCall.mock.calls.map((call) => call[1]);
    expect(keyCounts).toEqual([3, 1, 2]);
    expect(evalCall.mock.calls[1][2]).toMatch(/rate:global$/);
  });
});
