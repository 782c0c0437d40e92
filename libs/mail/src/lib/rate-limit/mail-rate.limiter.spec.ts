import { Logger } from '@nestjs/common';
import { resolveMailOptions } from '../mail.options';
import type { SesTransport } from '../ses/ses.transport';
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
