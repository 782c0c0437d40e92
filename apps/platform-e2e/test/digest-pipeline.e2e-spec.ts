import { INestApplication, INestApplicationContext } from '@nestjs/common';
import { SesMailbox, waitFor } from '@once/testing';
import request from 'supertest';
import {
  bootInProcessPlatform,
  CronJobsRegistrar,
  type InProcessPlatform,
} from './support/in-process-platform';

const USERS = 25;

describe('daily digest pipeline: scheduler → SQS → worker fan-out → SQS → worker → SES', () => {
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  let api: INestApplication;
  let scheduler: INestApplicationContext;

  let platform: InProcessPlatform | undefined;

  beforeAll(async () => {
    platform = await bootInProcessPlatform({ users: USERS });
    ({ api, scheduler } = platform);
    await mailbox.clear();
  });

  afterAll(async () => {
    await platform?.close();
  });

  it('delivers exactly one digest to every user for a fired slot', async () => {
    await request(api.getHttpServer()).get('/health').expect(200);
    const slot = new Date('2026-11-22T07:00:00.000Z');
    await scheduler.get(CronJobsRegistrar).fire('daily-digest', slot);

    const emails = await waitFor(`${USERS} emails in the SES emulator`, async () => {
      const all = await mailbox.all();
      return all.length >= USERS ? all : undefined;
    });
    // Let any straggler land before counting.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const final = await mailbox.all();
    expect(final).toHaveLength(USERS);
    expect(emails.length).toBe(USERS);

    const byRecipient = new Map(final.map((email) => [email.destination.to[0], email]));
    expect(byRecipient.size).toBe(USERS);
    for (let n = 1; n <= USERS; n++) {
      const email = byRecipient.get(`user${n}@example.com`);
      expect(email?.subject).toBe('Your daily digest for 2026-11-22');
      expect(email?.body.text).toContain(`Hello User ${n},`);
    }
  });

  it('puts a signed same-site link in each email that the api redirects with the campaign UTMs', async () => {
    const [email] = (await mailbox.all()).filter((mail) => mail.destination.to[0] === 'user7@example.com');
    const link = email.body.text?.split('\n').find((line) => line.startsWith('http'));
    expect(link).toMatch(
      /^http:\/\/127\.0\.0\.1:3000\/daily\/\?\/updates\/2026-11-22\/&c=Daily_Notification&r=7&/,
    );
    const url = new URL(link!);
    const response = await request(api.getHttpServer()).get(`${url.pathname}${url.search}`).expect(302);
    expect(response.headers.location).toBe(
      'http://127.0.0.1:3000/updates/2026-11-22/?utm_source=email&utm_medium=email&utm_campaign=Daily_Notification',
    );
    const tampered = `${url.pathname}${url.search.replace('r=7', 'r=8')}`;
    await request(api.getHttpServer()).get(tampered).expect(400);
  });
});
