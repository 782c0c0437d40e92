import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSign, randomUUID } from 'node:crypto';
import { type INestApplication, Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  MAIL_ENTITIES,
  MAIL_MIGRATIONS,
  MailLedgerService,
  MailModule,
  MailService,
  MailSuppressionService,
  SnsHttpStatusError,
  type SnsHttpGet,
} from '@once/mail';
import { SesMailbox } from '@once/testing';
import Redis from 'ioredis';
import { generate } from 'selfsigned';
import request from 'supertest';
import { SesNotificationsModule } from '../src/ses-notifications/ses-notifications.module';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:once-ses-feedback';
const CERT_PATH = '/SimpleNotificationService-once-test.pem';
const CERT_URL = `https://sns.us-east-1.amazonaws.com${CERT_PATH}`;
const FLOOD_PATH_PREFIX = '/SimpleNotificationService-flood-';
const FLAKY_PATH = '/SimpleNotificationService-flaky.pem';
const TRANSIENT_FAILURE_TTL_MS = 300;

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through the e2e target`);
  return value;
}

const address = (label: string) => `${label}-${randomUUID().slice(0, 8)}@example.com`;

interface Envelope {
  Type: 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SigningCertURL: string;
  Subject?: string;
  Token?: string;
  SubscribeURL?: string;
  SignatureVersion?: string;
  Signature?: string;
}

/** Signs as SNS does (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html). */
function sign(envelope: Envelope, privateKey: string, version: '1' | '2'): Envelope {
  const fields =
    envelope.Type === 'Notification'
      ? ['Message', 'MessageId', ...(envelope.Subject ? ['Subject'] : []), 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  const text = fields.map((field) => `${field}\n${envelope[field as keyof Envelope]}\n`).join('');
  const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256').update(text, 'utf8');
  return { ...envelope, SignatureVersion: version, Signature: signer.sign(privateKey, 'base64') };
}

function sesNotification(
  type: 'Bounce' | 'Complaint' | 'Delivery',
  recipient: string,
  extra: object,
  sesMessageId?: string,
) {
  return {
    notificationType: type,
    mail: {
      timestamp: '2026-11-22T10:00:00.000Z',
      messageId: sesMessageId ?? `ses-${randomUUID()}`,
      source: 'digest@once.example',
      destination: [recipient],
    },
    ...extra,
  };
}

function envelope(message: object, overrides: Partial<Envelope> = {}): Envelope {
  return {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: TOPIC,
    Subject: 'Amazon SES Email Event Notification',
    Message: JSON.stringify(message),
    Timestamp: new Date().toISOString(),
    SigningCertURL: CERT_URL,
    ...overrides,
  };
}

const hardBounce = (recipient: string, sesMessageId?: string) =>
  sesNotification(
    'Bounce',
    recipient,
    {
      bounce: {
        bounceType: 'Permanent',
        bounceSubType: 'General',
        bouncedRecipients: [
          {
            emailAddress: recipient,
            action: 'failed',
            status: '5.1.1',
            diagnosticCode: 'smtp; 550 5.1.1 user unknown',
          },
        ],
        timestamp: '2026-11-22T10:00:01.000Z',
        feedbackId: `feedback-${randomUUID()}`,
      },
    },
    sesMessageId,
  );

describe('POST /webhooks/ses (SNS → SES feedback, real Postgres)', () => {
  let keys: { private: string; cert: string };
  let otherKeys: { private: string; cert: string };
  let certServer: Server;
  let certServerUrl: string;
  const fetchedUrls: string[] = [];
  /** GETs of flood certificates that reached the local server, and how many were open at once. */
  const floodGets = { total: 0, open: 0, maxOpen: 0, paths: [] as string[] };
  let flakyGets = 0;
  const confirmations: string[] = [];
  let redis: Redis;
  let app: INestApplication;
  let rawBodyApp: NestExpressApplication;

  /** The injected fetcher: the SNS URL stays what it was (and was checked), the bytes come from the local server. */
  const httpGet: SnsHttpGet = async (url, { signal }) => {
    fetchedUrls.push(url.toString());
    const response = await fetch(`${certServerUrl}${url.pathname}${url.search}`, { signal });
    if (!response.ok) throw new SnsHttpStatusError(response.status);
    return response.text();
  };

  async function createApp<T extends INestApplication>(
    options: { rawBody?: boolean } = {},
    configure: (created: T) => void = () => undefined,
  ): Promise<T> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: env('DATABASE_URL'),
          entities: MAIL_ENTITIES,
          migrations: MAIL_MIGRATIONS,
          migrationsRun: true,
          synchronize: false,
        }),
        MailModule.forRoot({
          ses: {
            region: env('AWS_REGION'),
            endpoint: env('SES_ENDPOINT'),
            credentials: {
              accessKeyId: env('AWS_ACCESS_KEY_ID'),
              secretAccessKey: env('AWS_SECRET_ACCESS_KEY'),
            },
          },
          redis,
          redisKeyPrefix: `${env('REDIS_KEY_PREFIX')}mail:`,
          defaultFrom: 'digest@once.example',
          rateLimit: { maxSendRate: 200, burst: 20, perRecipient: false },
        }),
        SesNotificationsModule.forRoot({
          topicArns: [TOPIC],
          httpGet,
          certificates: { transientFailureTtlMs: TRANSIENT_FAILURE_TTL_MS },
        }),
      ],
    }).compile();
    const created = moduleRef.createNestApplication<T>(options);
    configure(created);
    await created.init();
    return created;
  }

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    [keys, otherKeys] = await Promise.all([
      generate([{ name: 'commonName', value: 'sns.amazonaws.com' }], { keySize: 2048, algorithm: 'sha256' }),
      generate([{ name: 'commonName', value: 'attacker.example' }], { keySize: 2048, algorithm: 'sha256' }),
    ]);
    certServer = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === CERT_PATH) {
        res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(keys.cert);
      } else if (url.pathname === FLAKY_PATH) {
        flakyGets += 1;
        if (flakyGets === 1) res.writeHead(500).end();
        else res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(keys.cert);
      } else if (url.pathname.startsWith(FLOOD_PATH_PREFIX)) {
        // What sns.<region>.amazonaws.com answers for a made-up certificate, slowly enough to overlap.
        floodGets.total += 1;
        floodGets.paths.push(url.pathname);
        floodGets.open += 1;
        floodGets.maxOpen = Math.max(floodGets.maxOpen, floodGets.open);
        setTimeout(() => {
          floodGets.open -= 1;
          res.writeHead(404).end();
        }, 300);
      } else if (url.searchParams.get('Action') === 'ConfirmSubscription') {
        confirmations.push(url.searchParams.get('Token') ?? '');
        res.writeHead(200, { 'content-type': 'text/xml' }).end('<ConfirmSubscriptionResponse/>');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => certServer.listen(0, '127.0.0.1', resolve));
    certServerUrl = `http://127.0.0.1:${(certServer.address() as AddressInfo).port}`;
    redis = new Redis(env('REDIS_URL'));
    app = await createApp();
  });

  afterAll(async () => {
    await app?.close();
    await rawBodyApp?.close();
    await redis?.quit();
    await new Promise((resolve) => certServer?.close(resolve));
  });

  // SNS posts JSON with Content-Type text/plain.
  const post = (body: unknown, target: INestApplication = app, contentType = 'text/plain; charset=UTF-8') =>
    request(target.getHttpServer())
      .post('/webhooks/ses')
      .set('Content-Type', contentType)
      .set('x-amz-sns-message-type', 'Notification')
      .send(typeof body === 'string' ? body : JSON.stringify(body));

  it('suppresses a hard-bounced address (SignatureVersion 1): later sends are recorded, not sent', async () => {
    const mail = app.get(MailService);
    const bounced = address('bounced');
    const first = await mail.send({
      idempotencyKey: `digest:${randomUUID()}`,
      to: bounced,
      subject: 'Digest',
      text: 'Hi',
    });
    expect(first.status).toBe('sent');

    const response = await post(sign(envelope(hardBounce(bounced, first.sesMessageId)), keys.private, '1'));
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'processed' });

    await expect(app.get(MailSuppressionService).get(bounced)).resolves.toMatchObject({
      reason: 'bounce',
      detail: expect.objectContaining({ bounceType: 'Permanent', sesMessageId: first.sesMessageId }),
    });
    await expect(app.get(MailLedgerService).get(first.idempotencyKey)).resolves.toMatchObject({
      deliveryStatus: 'bounced',
    });

    const later = await mail.send({
      idempotencyKey: `digest:${randomUUID()}`,
      to: bounced,
      subject: 'Digest 2',
      text: 'Hi',
    });
    expect(later).toMatchObject({ status: 'suppressed', ledgerStatus: 'suppressed' });
    await expect(app.get(MailLedgerService).get(later.idempotencyKey)).resolves.toMatchObject({
      status: 'suppressed',
    });
    const emails = (await new SesMailbox(env('SES_ENDPOINT')).all()).filter((email) =>
      email.destination.to.includes(bounced),
    );
    expect(emails.map((email) => email.subject)).toEqual(['Digest']);
  });

  it('suppresses complainers (SignatureVersion 2), not soft bounces, and records deliveries', async () => {
    const complainer = address('complainer');
    const soft = address('soft');
    const delivered = address('delivered');
    const complaint = sesNotification('Complaint', complainer, {
      complaint: {
        complainedRecipients: [{ emailAddress: complainer }],
        complaintFeedbackType: 'abuse',
        feedbackId: 'f-1',
      },
    });
    const softBounce = sesNotification('Bounce', soft, {
      bounce: {
        bounceType: 'Transient',
        bounceSubType: 'MailboxFull',
        bouncedRecipients: [{ emailAddress: soft }],
      },
    });
    const sent = await app
      .get(MailService)
      .send({ idempotencyKey: `digest:${randomUUID()}`, to: delivered, subject: 'S', text: 'T' });
    const delivery = sesNotification(
      'Delivery',
      delivered,
      { delivery: { recipients: [delivered] } },
      sent.sesMessageId,
    );

    for (const message of [complaint, softBounce, delivery]) {
      const response = await post(sign(envelope(message), keys.private, '2'));
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ status: 'processed' });
    }

    const suppressions = app.get(MailSuppressionService);
    await expect(suppressions.get(complainer)).resolves.toMatchObject({ reason: 'complaint' });
    await expect(suppressions.isSuppressed(soft)).resolves.toBe(false);
    await expect(suppressions.isSuppressed(delivered)).resolves.toBe(false);
    await expect(app.get(MailLedgerService).get(sent.idempotencyKey)).resolves.toMatchObject({
      deliveryStatus: 'delivered',
    });
  });

  it('processes each SNS MessageId once', async () => {
    const bounced = address('redelivered');
    const signed = sign(envelope(hardBounce(bounced)), keys.private, '2');
    expect((await post(signed)).body).toEqual({ status: 'processed' });

    const suppressions = app.get(MailSuppressionService);
    await suppressions.unsuppress(bounced);
    const again = await post(signed);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ status: 'duplicate' });
    await expect(suppressions.isSuppressed(bounced)).resolves.toBe(false);
  });

  it('records a genuine notification whose text holds NUL bytes (Postgres text cannot), instead of a 500 SNS would redeliver forever', async () => {
    const bounced = address('nul-bytes');
    const notification = hardBounce(bounced) as unknown as {
      bounce: { bouncedRecipients: Array<Record<string, string>> };
    };
    notification.bounce.bouncedRecipients[0].diagnosticCode = 'smtp; 550 \u0000user\u0000 unknown';
    const response = await post(sign(envelope(notification), keys.private, '2'));
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'processed' });
    await expect(app.get(MailSuppressionService).isSuppressed(bounced)).resolves.toBe(true);
  });

  it.each<[string, (victim: string) => Envelope, string]>([
    [
      'a tampered message',
      (victim) => ({
        ...sign(envelope(hardBounce('someone@example.com')), keys.private, '2'),
        Message: JSON.stringify(hardBounce(victim)),
      }),
      'signature',
    ],
    [
      'a signature by another key (SignatureVersion 1)',
      (victim) => sign(envelope(hardBounce(victim)), otherKeys.private, '1'),
      'signature',
    ],
    [
      'a signature by another key (SignatureVersion 2)',
      (victim) => sign(envelope(hardBounce(victim)), otherKeys.private, '2'),
      'signature',
    ],
    [
      'a certificate on a look-alike host',
      (victim) =>
        sign(
          envelope(hardBounce(victim), {
            SigningCertURL: `https://sns.us-east-1.amazonaws.com.evil.example${CERT_PATH}`,
          }),
          keys.private,
          '2',
        ),
      'certificate-url',
    ],
    [
      'a certificate over http',
      (victim) =>
        sign(
          envelope(hardBounce(victim), { SigningCertURL: `http://sns.us-east-1.amazonaws.com${CERT_PATH}` }),
          keys.private,
          '1',
        ),
      'certificate-url',
    ],
    [
      'an unlisted TopicArn',
      (victim) =>
        sign(
          envelope(hardBounce(victim), { TopicArn: 'arn:aws:sns:us-east-1:999999999999:attacker' }),
          keys.private,
          '2',
        ),
      'topic-not-allowed',
    ],
    [
      'an unknown SignatureVersion',
      (victim) => ({ ...sign(envelope(hardBounce(victim)), keys.private, '2'), SignatureVersion: '3' }),
      'unsupported-signature-version',
    ],
  ])('rejects %s with 403 and suppresses nobody', async (_name, build, reason) => {
    const victim = address('victim');
    const fetchedBefore = fetchedUrls.length;

    const response = await post(build(victim));

    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ message: 'SNS message rejected', reason });
    await expect(app.get(MailSuppressionService).isSuppressed(victim)).resolves.toBe(false);
    if (reason !== 'signature') expect(fetchedUrls.slice(fetchedBefore)).toEqual([]);
  });

  it.each([
    ['stale', 'sent an hour and a minute ago', -61 * 60_000],
    ['future', 'dated ten minutes ahead', 10 * 60_000],
  ])(
    'rejects a genuinely signed message %s (%s) with 403, before fetching a certificate',
    async (reason, _when, offsetMs) => {
      const victim = address(reason);
      const fetchedBefore = fetchedUrls.length;
      const timestamp = new Date(Date.now() + offsetMs).toISOString();

      const response = await post(
        sign(envelope(hardBounce(victim), { Timestamp: timestamp }), keys.private, '2'),
      );

      expect(response.status).toBe(403);
      expect(response.body).toEqual({ statusCode: 403, message: 'SNS message rejected', reason });
      expect(fetchedUrls.slice(fetchedBefore)).toEqual([]);
      await expect(app.get(MailSuppressionService).isSuppressed(victim)).resolves.toBe(false);
    },
  );

  it('refuses an unparsable Timestamp as malformed (403), like any envelope it cannot authenticate', async () => {
    const victim = address('when');
    const response = await post(
      sign(envelope(hardBounce(victim), { Timestamp: 'last Tuesday' }), keys.private, '2'),
    );
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ reason: 'malformed' });
    await expect(app.get(MailSuppressionService).isSuppressed(victim)).resolves.toBe(false);
  });

  it('answers 503 when the certificate server fails (so SNS redelivers), and processes the redelivery', async () => {
    const bounced = address('flaky');
    const signed = sign(
      envelope(hardBounce(bounced), { SigningCertURL: `https://sns.us-east-1.amazonaws.com${FLAKY_PATH}` }),
      keys.private,
      '2',
    );
    const first = await post(signed);
    expect(first.status).toBe(503);
    expect(first.body).toMatchObject({ reason: 'certificate-unavailable' });
    expect((await post(signed)).status).toBe(503);
    expect(flakyGets).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, TRANSIENT_FAILURE_TTL_MS + 50));
    const redelivered = await post(signed);
    expect(redelivered.status).toBe(200);
    expect(redelivered.body).toEqual({ status: 'processed' });
    expect(flakyGets).toBe(2);
    await expect(app.get(MailSuppressionService).isSuppressed(bounced)).resolves.toBe(true);
  });

  it('keeps certificate GETs bounded under a flood of 200 forged posts naming 200 certificate URLs', async () => {
    const flood = (round: string) =>
      Array.from({ length: 200 }, (_, index) =>
        post(
          sign(
            envelope(hardBounce(address(`flood-${round}`)), {
              SigningCertURL: `https://sns.us-east-1.amazonaws.com${FLOOD_PATH_PREFIX}${index}.pem`,
            }),
            otherKeys.private,
            '2',
          ),
        ),
      );
    const first = flood('first');
    // A genuine message whose certificate is cached goes through while the flood holds every download slot.
    const genuine = await post(sign(envelope(hardBounce(address('during-flood'))), keys.private, '2'));
    expect(genuine.status).toBe(200);
    const responses = await Promise.all(first);

    const statuses = responses.map((response) => `${response.status} ${response.body.reason}`);
    const counts = Object.fromEntries(
      [...new Set(statuses)].map((status) => [status, statuses.filter((s) => s === status).length]),
    );
    expect(floodGets.maxOpen).toBeLessThanOrEqual(4);
    expect(floodGets.total).toBeGreaterThan(0);
    expect(floodGets.total).toBeLessThanOrEqual(8);
    expect(counts).toEqual({
      '403 certificate': floodGets.total,
      '503 certificate-busy': 200 - floodGets.total,
    });

    // The URLs that failed are not fetched again for a while; the others take the freed slots, 4 at a time.
    const failedPaths = new Set(floodGets.paths);
    const totalBefore = floodGets.total;
    await Promise.all(flood('second'));
    expect(floodGets.maxOpen).toBeLessThanOrEqual(4);
    expect(floodGets.total - totalBefore).toBeLessThanOrEqual(8);
    expect(floodGets.paths.slice(totalBefore).filter((path) => failedPaths.has(path))).toEqual([]);
  });

  it('confirms subscriptions only for allowed topics through an SNS host', async () => {
    const confirmation = (token: string, subscribeUrl: string, topic = TOPIC) =>
      sign(
        envelope(
          {},
          {
            Type: 'SubscriptionConfirmation',
            Subject: undefined,
            TopicArn: topic,
            Message: `You have chosen to subscribe to the topic ${topic}.`,
            Token: token,
            SubscribeURL: subscribeUrl,
          },
        ),
        keys.private,
        '2',
      );
    const good = `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(TOPIC)}&Token=tok-good`;

    const accepted = await post(confirmation('tok-good', good));
    expect(accepted.status).toBe(200);
    expect(accepted.body).toEqual({ status: 'confirmed' });
    expect(confirmations).toEqual(['tok-good']);

    const evilHost = await post(
      confirmation('tok-evil', 'https://attacker.example/?Action=ConfirmSubscription&Token=tok-evil'),
    );
    expect(evilHost.status).toBe(403);
    expect(evilHost.body).toMatchObject({ reason: 'subscribe-url' });

    const otherTopic = 'arn:aws:sns:us-east-1:999999999999:attacker';
    const unlisted = await post(confirmation('tok-topic', good.replace('tok-good', 'tok-topic'), otherTopic));
    expect(unlisted.status).toBe(403);
    expect(confirmations).toEqual(['tok-good']);
  });

  it('answers 400 to bodies that are not JSON', async () => {
    expect((await post('this is not json')).status).toBe(400);
    expect((await post('')).status).toBe(400);
  });

  it('works whether the app parses JSON bodies, keeps raw bodies, or parses text', async () => {
    const viaJsonParser = address('json');
    const json = await post(
      sign(envelope(hardBounce(viaJsonParser)), keys.private, '2'),
      app,
      'application/json',
    );
    expect(json.body).toEqual({ status: 'processed' });

    rawBodyApp = await createApp<NestExpressApplication>({ rawBody: true }, (created) =>
      created.useBodyParser('text'),
    );
    const viaRawBody = address('raw');
    const raw = await post(sign(envelope(hardBounce(viaRawBody)), keys.private, '1'), rawBodyApp);
    expect(raw.body).toEqual({ status: 'processed' });

    const suppressions = app.get(MailSuppressionService);
    await expect(suppressions.isSuppressed(viaJsonParser)).resolves.toBe(true);
    await expect(suppressions.isSuppressed(viaRawBody)).resolves.toBe(true);
  });
});
