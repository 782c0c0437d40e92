import { createSign } from 'node:crypto';
import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { generate } from 'selfsigned';
import {
  type SnsMessage,
  SnsHttpStatusError,
  SnsSignatureVerifier,
  type SnsVerifierOptions,
  SnsVerificationError,
  snsStringToSign,
} from './sns-signature.verifier';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-feedback';
const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem';

type Unsigned = Omit<SnsMessage, 'Signature' | 'SignatureVersion'>;

/** Signs like SNS does, building the string independently of the code under test. */
function sign(message: Unsigned, privateKey: string, version: '1' | '2'): SnsMessage {
  const fields =
    message.Type === 'Notification'
      ? ['Message', 'MessageId', ...(message.Subject ? ['Subject'] : []), 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  const text = fields
    .map((field) => `${field}\n${(message as unknown as Record<string, string>)[field]}\n`)
    .join('');
  const signature = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256')
    .update(text)
    .sign(privateKey, 'base64');
  return { ...message, SignatureVersion: version, Signature: signature };
}

function notification(overrides: Partial<Unsigned> = {}): Unsigned {
  return {
    Type: 'Notification',
    MessageId: 'msg-1',
    TopicArn: TOPIC,
    Subject: 'Amazon SES Email Event Notification',
    Message: JSON.stringify({ notificationType: 'Delivery', mail: { messageId: 'ses-1' } }),
    Timestamp: new Date().toISOString(),
    SigningCertURL: CERT_URL,
    ...overrides,
  };
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SnsVerificationError);
    return (error as SnsVerificationError).reason;
  }
  throw new Error('expected the message to be rejected');
}

describe('SnsSignatureVerifier', () => {
  let keys: { private: string; cert: string };
  let otherKeys: { private: string; cert: string };
  let fetched: string[];
  let verifier: SnsSignatureVerifier;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    [keys, otherKeys] = await Promise.all([
      generate([{ name: 'commonName', value: 'sns.amazonaws.com' }], { keySize: 2048, algorithm: 'sha256' }),
      generate([{ name: 'commonName', value: 'attacker.example' }], { keySize: 2048, algorithm: 'sha256' }),
    ]);
  });

  beforeEach(() => {
    fetched = [];
    verifier = new SnsSignatureVerifier({
      topicArns: [TOPIC],
      httpGet: async (url) => {
        fetched.push(url.toString());
        return keys.cert;
      },
    });
  });

  it('accepts SignatureVersion 1 and 2, and caches the certificate', async () => {
    await expect(verifier.verify(sign(notification(), keys.private, '1'))).resolves.toMatchObject({
      MessageId: 'msg-1',
    });
    await expect(
      verifier.verify(sign(notification({ Subject: undefined }), keys.private, '2')),
    ).resolves.toMatchObject({
      Type: 'Notification',
    });
    expect(fetched).toEqual([CERT_URL]);
  });

  it('rejects tampered messages and signatures by another key', async () => {
    const tampered = { ...sign(notification(), keys.private, '2'), Message: '{"notificationType":"Bounce"}' };
    expect(await rejection(verifier.verify(tampered))).toBe('signature');
    expect(await rejection(verifier.verify(sign(notification(), otherKeys.private, '1')))).toBe('signature');
  });

  it('rejects unknown topics and bad certificate URLs before fetching anything', async () => {
    const cases: Array<[Partial<Unsigned>, string]> = [
      [{ TopicArn: 'arn:aws:sns:us-east-1:999999999999:other' }, 'topic-not-allowed'],
      [{ SigningCertURL: 'http://sns.us-east-1.amazonaws.com/cert.pem' }, 'certificate-url'],
      [{ SigningCertURL: 'https://sns.us-east-1.amazonaws.com.evil.example/cert.pem' }, 'certificate-url'],
      [{ SigningCertURL: 'https://evil.example/sns.us-east-1.amazonaws.com/cert.pem' }, 'certificate-url'],
      [{ SigningCertURL: 'https://sns.us-east-1.amazonaws.com:8443/cert.pem' }, 'certificate-url'],
      [{ SigningCertURL: 'https://sns.us-east-1.amazonaws.com/cert.txt' }, 'certificate-url'],
      [{ SigningCertURL: `${CERT_URL}?x=1` }, 'certificate-url'],
      [{ SigningCertURL: `${CERT_URL}#x` }, 'certificate-url'],
      [{ SigningCertURL: `${CERT_URL}?` }, 'certificate-url'],
    ];
    for (const [overrides, reason] of cases) {
      expect(await rejection(verifier.verify(sign(notification(overrides), keys.private, '2')))).toBe(reason);
    }
    expect(fetched).toEqual([]);
  });

  it('rejects unsupported signature versions and malformed bodies', async () => {
    const message = { ...sign(notification(), keys.private, '2'), SignatureVersion: '3' };
    expect(await rejection(verifier.verify(message))).toBe('unsupported-signature-version');
    expect(await rejection(verifier.verify({ Type: 'Notification' }))).toBe('malformed');
    expect(await rejection(verifier.verify('not an object'))).toBe('malformed');
  });

  it('accepts China-region hosts and a custom host pattern', async () => {
    const cn = notification({
      SigningCertURL: 'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem',
    });
    await expect(verifier.verify(sign(cn, keys.private, '2'))).resolves.toBeDefined();

    const custom = new SnsSignatureVerifier({
      topicArns: [TOPIC],
      hostPattern: /^sns\.test\.local$/,
      httpGet: async () => keys.cert,
    });
    const local = notification({ SigningCertURL: 'https://sns.test.local/cert.pem' });
    await expect(custom.verify(sign(local, keys.private, '1'))).resolves.toBeDefined();
    expect(await rejection(custom.verify(sign(notification(), keys.private, '1')))).toBe('certificate-url');
  });

  it('confirms subscriptions only through an https SNS SubscribeURL', async () => {
    const confirmation = (subscribeUrl: string) =>
      sign(
        {
          ...notification({
            Type: 'SubscriptionConfirmation',
            Subject: undefined,
            Message: 'You have chosen to subscribe',
          }),
          Token: 'token-1',
          SubscribeURL: subscribeUrl,
        },
        keys.private,
        '2',
      );
    const good = await verifier.verify(
      confirmation('https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=token-1'),
    );
    await verifier.confirmSubscription(good);
    expect(fetched).toContain(
      'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=token-1',
    );

    const evil = await verifier.verify(confirmation('https://evil.example/?Action=ConfirmSubscription'));
    expect(await rejection(verifier.confirmSubscription(evil))).toBe('subscribe-url');
    expect(fetched.some((url) => url.includes('evil.example'))).toBe(false);
  });

  it('builds the canonical string SNS signs', () => {
    const text = snsStringToSign({ ...notification(), SignatureVersion: '2', Signature: 'x' });
    expect(text.split('\n').filter((_, index) => index % 2 === 0)).toEqual([
      'Message',
      'MessageId',
      'Subject',
      'Timestamp',
      'TopicArn',
      'Type',
      '',
    ]);
  });

  it('reports certificate download failures as certificate errors', async () => {
    const failing = new SnsSignatureVerifier({
      topicArns: [TOPIC],
      httpGet: async () => {
        throw new SnsHttpStatusError(403);
      },
    });
    expect(await rejection(failing.verify(sign(notification(), keys.private, '2')))).toBe('certificate');
  });
  describe('Timestamp window', () => {
    const now = Date.parse('2026-12-01T12:00:00.000Z');
    const at = (offsetMs: number) => new Date(now + offsetMs).toISOString();
    const clocked = (options: Partial<SnsVerifierOptions> = {}) =>
      new SnsSignatureVerifier({
        topicArns: [TOPIC],
        httpGet: async (url) => {
          fetched.push(url.toString());
          return keys.cert;
        },
        now: () => now,
        ...options,
      });
    // The selfsigned certificate is valid from today; the window test's clock is not.
    const clockedKeys = () =>
      generate([{ name: 'commonName', value: 'sns.amazonaws.com' }], {
        keySize: 2048,
        algorithm: 'sha256',
        notBeforeDate: new Date(now - 24 * 3600_000),
      });
    let oldKeys: { private: string; cert: string };
    let clockedVerifier = (options: Partial<SnsVerifierOptions> = {}) => clocked(options);

    beforeAll(async () => {
      oldKeys = await clockedKeys();
      clockedVerifier = (options = {}) =>
        clocked({
          httpGet: async (url) => {
            fetched.push(url.toString());
            return oldKeys.cert;
          },
          ...options,
        });
    });

    it('refuses messages older than an hour, or from more than 5 minutes ahead, before fetching a certificate', async () => {
      const check = clockedVerifier();
      const reasonAt = (offsetMs: number) =>
        rejection(check.verify(sign(notification({ Timestamp: at(offsetMs) }), oldKeys.private, '2')));

      expect(await reasonAt(-3600_000 - 1)).toBe('stale');
      expect(await reasonAt(-30 * 24 * 3600_000)).toBe('stale');
      expect(await reasonAt(5 * 60_000 + 1)).toBe('future');
      expect(await reasonAt(365 * 24 * 3600_000)).toBe('future');
      expect(fetched).toEqual([]);

      for (const offset of [-3600_000, -59 * 60_000, 0, 5 * 60_000]) {
        await expect(
          check.verify(sign(notification({ Timestamp: at(offset) }), oldKeys.private, '1')),
        ).resolves.toBeDefined();
      }
    });

    it('takes the window and the clock skew from the options', async () => {
      const check = clockedVerifier({ maxMessageAgeMs: 60_000, maxClockSkewMs: 1_000 });
      const verifyAt = (offsetMs: number) =>
        check.verify(sign(notification({ Timestamp: at(offsetMs) }), oldKeys.private, '2'));
      expect(await rejection(verifyAt(-60_001))).toBe('stale');
      expect(await rejection(verifyAt(1_001))).toBe('future');
      await expect(verifyAt(-60_000)).resolves.toBeDefined();
      await expect(verifyAt(1_000)).resolves.toBeDefined();
      expect(() => clockedVerifier({ maxMessageAgeMs: 0 })).toThrow(/maxMessageAgeMs/);
      expect(() => clockedVerifier({ maxClockSkewMs: -1 })).toThrow(/maxClockSkewMs/);
    });

    it('refuses an unparsable Timestamp as malformed', async () => {
      const check = clockedVerifier();
      for (const Timestamp of [
        'yesterday',
        '2026-12-01',
        '2026-13-01T12:00:00.000Z',
        '2026-12-01T25:00:00.000Z',
        '1733050000',
        '',
      ]) {
        expect(await rejection(check.verify(sign(notification({ Timestamp }), oldKeys.private, '2')))).toBe(
          'malformed',
        );
      }
      expect(fetched).toEqual([]);
    });

    it('accepts exactly the Timestamps inside [now - max age, now + skew] (property)', async () => {
      const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
      console.log(`sns-signature.verifier.spec Timestamp window: fast-check seed ${seed}`);
      const maxMessageAgeMs = 3600_000;
      const maxClockSkewMs = 300_000;
      const check = clockedVerifier({ maxMessageAgeMs, maxClockSkewMs });
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.integer({ min: -2 * maxMessageAgeMs, max: 2 * maxClockSkewMs }),
            fc.constantFrom(-maxMessageAgeMs - 1, -maxMessageAgeMs, maxClockSkewMs, maxClockSkewMs + 1),
          ),
          async (offset) => {
            const outcome = await check
              .verify(sign(notification({ Timestamp: at(offset) }), oldKeys.private, '2'))
              .then(
                () => 'accepted',
                (error: SnsVerificationError) => error.reason,
              );
            const expected =
              offset < -maxMessageAgeMs ? 'stale' : offset > maxClockSkewMs ? 'future' : 'accepted';
            expect(outcome).toBe(expected);
          },
        ),
        { seed, numRuns: 60 },
      );
    });
  });

  describe('certificate downloads', () => {
    const certUrl = (index: number) =>
      `https://sns.us-east-1.amazonaws.com/SimpleNotificationService-${index}.pem`;

    /** A fetcher whose downloads finish when the test says so, recording how many ran at once. */
    function controlledFetcher(answer: (url: URL) => string = () => keys.cert) {
      const calls: string[] = [];
      const pending: Array<() => void> = [];
      const state = { inFlight: 0, maxInFlight: 0 };
      const httpGet = (url: URL): Promise<string> => {
        calls.push(url.toString());
        state.inFlight += 1;
        state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
        return new Promise<string>((resolve, reject) => {
          pending.push(() => {
            state.inFlight -= 1;
            try {
              resolve(answer(url));
            } catch (error) {
              reject(error as Error);
            }
          });
        });
      };
      const releaseAll = async () => {
        while (pending.length > 0) {
          pending.splice(0).forEach((release) => release());
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      return { httpGet, calls, state, releaseAll };
    }

    it('keeps at most 4 downloads in flight under a flood of 200 forged posts, refusing the rest as busy', async () => {
      const fetcher = controlledFetcher();
      const flooded = new SnsSignatureVerifier({ topicArns: [TOPIC], httpGet: fetcher.httpGet });
      const outcomes = Array.from({ length: 200 }, (_, index) =>
        rejection(
          flooded.verify(
            sign(
              notification({ MessageId: `forged-${index}`, SigningCertURL: certUrl(index) }),
              otherKeys.private,
              '2',
            ),
          ),
        ),
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(fetcher.state.inFlight).toBeLessThanOrEqual(4);
      await fetcher.releaseAll();
      const reasons = await Promise.all(outcomes);

      expect(fetcher.state.maxInFlight).toBeLessThanOrEqual(4);
      expect(fetcher.calls).toHaveLength(4);
      expect(reasons.filter((reason) => reason === 'certificate-busy')).toHaveLength(
        200 - fetcher.calls.length,
      );
      expect(reasons.filter((reason) => reason === 'signature')).toHaveLength(fetcher.calls.length);
    });

    it('shares one download between concurrent messages naming the same certificate', async () => {
      const fetcher = controlledFetcher();
      const shared = new SnsSignatureVerifier({ topicArns: [TOPIC], httpGet: fetcher.httpGet });
      const verifications = Array.from({ length: 20 }, (_, index) =>
        shared.verify(sign(notification({ MessageId: `m-${index}` }), keys.private, '2')),
      );
      await fetcher.releaseAll();
      await expect(Promise.all(verifications)).resolves.toHaveLength(20);
      expect(fetcher.calls).toEqual([CERT_URL]);
    });

    it('keeps at most cacheSize certificates, evicting the least recently used', async () => {
      const calls: string[] = [];
      const cached = new SnsSignatureVerifier({
        topicArns: [TOPIC],
        certificates: { cacheSize: 100 },
        httpGet: async (url) => {
          calls.push(url.toString());
          return keys.cert;
        },
      });
      const verifyWith = (index: number) =>
        cached.verify(sign(notification({ SigningCertURL: certUrl(index) }), keys.private, '2'));
      for (let index = 0; index < 150; index += 1) await verifyWith(index);
      expect(calls).toHaveLength(150);

      for (let index = 149; index >= 50; index -= 1) await verifyWith(index);
      expect(calls).toHaveLength(150);
      await verifyWith(0);
      expect(calls.slice(150)).toEqual([certUrl(0)]);
    });

    it('expires cached certificates after cacheTtlMs', async () => {
      let now = Date.now();
      const calls: string[] = [];
      const expiring = new SnsSignatureVerifier({
        topicArns: [TOPIC],
        certificates: { cacheTtlMs: 60_000 },
        now: () => now,
        httpGet: async (url) => {
          calls.push(url.toString());
          return keys.cert;
        },
      });
      const verifyNow = () =>
        expiring.verify(sign(notification({ Timestamp: new Date(now).toISOString() }), keys.private, '2'));
      await verifyNow();
      now += 59_000;
      await verifyNow();
      expect(calls).toHaveLength(1);
      now += 2_000;
      await verifyNow();
      expect(calls).toHaveLength(2);
    });

    it('does not download a certificate that failed again within failureTtlMs', async () => {
      let now = Date.now();
      const calls: string[] = [];
      const failing = new SnsSignatureVerifier({
        topicArns: [TOPIC],
        now: () => now,
        httpGet: async (url) => {
          calls.push(url.toString());
          throw new SnsHttpStatusError(404);
        },
      });
      const attempt = () =>
        rejection(
          failing.verify(sign(notification({ Timestamp: new Date(now).toISOString() }), keys.private, '2')),
        );
      expect(await attempt()).toBe('certificate');
      now += 4 * 60_000;
      expect(await attempt()).toBe('certificate');
      expect(calls).toEqual([CERT_URL]);
      now += 60_000 + 1;
      expect(await attempt()).toBe('certificate');
      expect(calls).toEqual([CERT_URL, CERT_URL]);
    });

    it('answers a transient download failure as retryable, and tries that URL again after transientFailureTtlMs', async () => {
      let now = Date.now();
      const calls: string[] = [];
      let failWith: Error | undefined = new TypeError('fetch failed');
      const flaky = new SnsSignatureVerifier({
        topicArns: [TOPIC],
        now: () => now,
        httpGet: async (url) => {
          calls.push(url.toString());
          if (failWith) throw failWith;
          return keys.cert;
        },
      });
      const attempt = () =>
        flaky.verify(sign(notification({ Timestamp: new Date(now).toISOString() }), keys.private, '2')).then(
          () => 'accepted',
          (error: SnsVerificationError) => `${error.reason}${error.retryable ? ' (retryable)' : ''}`,
        );
      expect(await attempt()).toBe('certificate-unavailable (retryable)');
      now += 9_000;
      expect(await attempt()).toBe('certificate-unavailable (retryable)');
      expect(calls).toHaveLength(1);
      now += 1_001;
      failWith = new SnsHttpStatusError(503);
      expect(await attempt()).toBe('certificate-unavailable (retryable)');
      expect(calls).toHaveLength(2);
      now += 10_001;
      failWith = undefined;
      expect(await attempt()).toBe('accepted');
      expect(calls).toHaveLength(3);
    });

    it('gives up on a download after timeoutMs, aborting it and freeing its slot', async () => {
      const signals: AbortSignal[] = [];
      let hang = true;
      const slow = new SnsSignatureVerifier({
        topicArns: [TOPIC],
        certificates: { timeoutMs: 50, maxInFlight: 1 },
        httpGet: (_url, options) => {
          if (options?.signal) signals.push(options.signal);
          return hang ? new Promise<string>(() => undefined) : Promise.resolve(keys.cert);
        },
      });
      const started = Date.now();
      expect(await rejection(slow.verify(sign(notification(), keys.private, '2')))).toBe(
        'certificate-unavailable',
      );
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(signals[0]?.aborted).toBe(true);

      hang = false;
      await expect(
        slow.verify(sign(notification({ SigningCertURL: certUrl(1) }), keys.private, '2')),
      ).resolves.toBeDefined();
    });

    it('refuses certificate responses above maxBytes', async () => {
      const huge = new SnsSignatureVerifier({
        topicArns: [TOPIC],
        // OpenSSL skips text before the PEM block, so only the size limit refuses this one.
        httpGet: async () => `${'x'.repeat(64 * 1024)}\n${keys.cert}`,
      });
      expect(await rejection(huge.verify(sign(notification(), keys.private, '2')))).toBe('certificate');
    });
  });
});
