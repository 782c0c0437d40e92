import { createSign } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { generate } from 'selfsigned';
import {
  type SnsMessage,
  SnsSignatureVerifier,
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
    Timestamp: '2026-11-22T10:00:00.000Z',
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
        throw new Error('403 Forbidden');
      },
    });
    expect(await rejection(failing.verify(sign(notification(), keys.private, '2')))).toBe('certificate');
  });
});
