#!/usr/bin/env node
// Local AWS: fauxqs (SQS) and aws-ses-v2-local (SES), plus the platform's queues with their
// dead-letter queues and redrive policies. `node tools/scripts/emulators.mjs` keeps them running;
// the e2e global setup imports startEmulators() and runs them on free ports.
import { createRequire } from 'node:module';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';

const require = createRequire(import.meta.url);

/** The platform's queues; each gets `<name>-dlq` and a redrive policy. */
export const PLATFORM_QUEUES = ['once-jobs', 'once-send-email'];

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** What the SES emulator answers to GetAccount: a production account sending 200 mails a second. */
export const LOCAL_SES_ACCOUNT = {
  DedicatedIpAutoWarmupEnabled: false,
  Details: {
    AdditionalContactEmailAddresses: [],
    ContactLanguage: 'EN',
    MailType: 'TRANSACTIONAL',
    ReviewDetails: { CaseId: 'local', Status: 'GRANTED' },
    UseCaseDescription: 'Once local development',
    WebsiteURL: 'http://127.0.0.1:3000',
  },
  EnforcementStatus: 'HEALTHY',
  ProductionAccessEnabled: true,
  SendingEnabled: true,
  SendQuota: { Max24HourSend: 1_000_000, MaxSendRate: 200, SentLast24Hours: 0 },
  SuppressionAttributes: { SuppressedReasons: ['BOUNCE', 'COMPLAINT'] },
};

async function waitFor(url, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not answer at ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Creates `name` and `name-dlq` with a redrive policy; returns both URLs (as CreateQueue returned them). */
export async function createQueueWithDlq(sqs, name, { visibilityTimeout = 30, maxReceiveCount = 5 } = {}) {
  const { QueueUrl: dlqUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: `${name}-dlq`, Attributes: { MessageRetentionPeriod: '1209600' } }),
  );
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
  );
  const { QueueUrl: url } = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(visibilityTimeout),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes.QueueArn,
          maxReceiveCount: String(maxReceiveCount),
        }),
      },
    }),
  );
  return { url, dlqUrl };
}

/**
 * Starts both emulators (port 0 picks free ports) and creates the platform's queues.
 * Resolves once both answer their health checks.
 */
export async function startEmulators({
  sqsPort = 4566,
  sesPort = 8005,
  region = 'us-east-1',
  queues = PLATFORM_QUEUES,
  visibilityTimeout = 30,
  maxReceiveCount = 5,
} = {}) {
  // Node 20 is this project's runtime; the SDK's notice about its future Node 22 floor is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const fauxqs = await startFauxqs({ port: sqsPort, logger: false, defaultRegion: region });
  const sqsEndpoint = `http://127.0.0.1:${fauxqs.port}`;
  await waitFor(`${sqsEndpoint}/health`, 'fauxqs');

  // The emulator reads its GetAccount answer from this variable at request time.
  process.env.AWS_SES_ACCOUNT ??= JSON.stringify(LOCAL_SES_ACCOUNT);
  const ses = await require('aws-ses-v2-local').default({ port: sesPort, host: '127.0.0.1' });
  const sesEndpoint = `http://127.0.0.1:${ses.address().port}`;
  await waitFor(`${sesEndpoint}/health-check`, 'aws-ses-v2-local');

  const sqs = new SQSClient({ region, endpoint: sqsEndpoint, credentials: LOCAL_CREDENTIALS });
  const queueUrls = {};
  for (const name of queues) {
    const { url, dlqUrl } = await createQueueWithDlq(sqs, name, { visibilityTimeout, maxReceiveCount });
    queueUrls[name] = url;
    queueUrls[`${name}-dlq`] = dlqUrl;
  }
  sqs.destroy();

  return {
    sqsEndpoint,
    sesEndpoint,
    region,
    queueUrls,
    async stop() {
      await fauxqs.stop();
      await new Promise((resolve) => ses.close(() => resolve()));
    },
  };
}

/** The environment the apps need to talk to these emulators. */
export function emulatorEnv(emulators) {
  return {
    AWS_REGION: emulators.region,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    SQS_ENDPOINT: emulators.sqsEndpoint,
    SES_ENDPOINT: emulators.sesEndpoint,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const emulators = await startEmulators({
    sqsPort: Number(process.env.FAUXQS_PORT ?? 4566),
    sesPort: Number(process.env.SES_PORT ?? 8005),
  });
  console.log(`SQS (fauxqs)            ${emulators.sqsEndpoint}`);
  console.log(
    `SES (aws-ses-v2-local)  ${emulators.sesEndpoint}  (sent mail: ${emulators.sesEndpoint}/ , JSON: /store)`,
  );
  for (const [name, url] of Object.entries(emulators.queueUrls))
    console.log(`queue ${name.padEnd(22)} ${url}`);
  const stop = async () => {
    await emulators.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
