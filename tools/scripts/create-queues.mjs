#!/usr/bin/env node
// Creates the platform's queues (each with `<name>-dlq` and a redrive policy) on the SQS endpoint in
// SQS_ENDPOINT, waiting until it answers. Used by docker/compose.yaml against the fauxqs container.
import { SQSClient } from '@aws-sdk/client-sqs';
import { createQueueWithDlq, PLATFORM_QUEUES } from './emulators.mjs';

const endpoint = process.env.SQS_ENDPOINT ?? 'http://127.0.0.1:4566';
const sqs = new SQSClient({
  region: process.env.AWS_REGION ?? 'us-east-1',
  endpoint,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
  },
});

const deadline = Date.now() + 60_000;
for (;;) {
  try {
    for (const name of PLATFORM_QUEUES) {
      const { url, dlqUrl } = await createQueueWithDlq(sqs, name);
      console.log(`queue ${name}: ${url} (dead letters: ${dlqUrl})`);
    }
    break;
  } catch (error) {
    if (Date.now() > deadline) throw error;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
sqs.destroy();
