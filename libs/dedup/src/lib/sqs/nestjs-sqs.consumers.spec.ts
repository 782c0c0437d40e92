import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import { SqsMessageHandler, SqsModule } from '@ssut/nestjs-sqs';
import { SQS_CONSUMER_METHOD } from '../dedup.constants';
import { loadNestjsSqs, NestjsSqsConsumers, SUPPORTED_NESTJS_SQS_RANGE } from './nestjs-sqs.consumers';
import { satisfies } from 'semver';

/**
 * Contract test of the @ssut/nestjs-sqs internals the adapter reads: an upgrade that leaves
 * {@link SUPPORTED_NESTJS_SQS_RANGE} or renames them fails here.
 */
const installed = JSON.parse(
  readFileSync(join(__dirname, '../../../../../node_modules/@ssut/nestjs-sqs/package.json'), 'utf8'),
) as { version: string };

/** A client that answers every poll with no messages. */
const fakeClient = () => {
  const commands: unknown[] = [];
  const sqs = {
    send: async (command: unknown) => {
      commands.push(command);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { Messages: [] };
    },
  };
  return { sqs: sqs as unknown as SQSClient, commands };
};

@Injectable()
class JobsHandler {
  @SqsMessageHandler('jobs', false)
  async handle(): Promise<void> {
    // never called: the fake client returns no messages
  }

  @SqsMessageHandler('plain', false)
  async handlePlain(): Promise<void> {
    // never called: the fake client returns no messages
  }
}

describe('NestjsSqsConsumers (contract with @ssut/nestjs-sqs)', () => {
  const client = fakeClient();
  let moduleRef: TestingModule;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    moduleRef = await Test.createTestingModule({
      imports: [
        SqsModule.register({
          consumers: [
            {
              name: 'jobs',
              queueUrl: 'http://sqs/000000000000/jobs',
              sqs: client.sqs,
              messageAttributeNames: ['All'],
            },
            { name: 'plain', queueUrl: 'http://sqs/000000000000/plain', sqs: client.sqs },
          ],
        }),
      ],
      providers: [JobsHandler],
    }).compile();
    await moduleRef.init();
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  it(`the installed version (${installed.version}) is in the supported range ${SUPPORTED_NESTJS_SQS_RANGE}`, () => {
    expect(satisfies(installed.version, SUPPORTED_NESTJS_SQS_RANGE)).toBe(true);
  });

  it("finds a registered consumer's own client and queue URL (SqsService#getQueueInfo) and its attribute names (options.consumers)", async () => {
    const consumers = new NestjsSqsConsumers(moduleRef.get(ModuleRef));
    expect(consumers.queueOf('jobs')).toEqual({ sqs: client.sqs, queueUrl: 'http://sqs/000000000000/jobs' });
    expect(consumers.receivesAllAttributes('jobs')).toBe(true);
    expect(consumers.receivesAllAttributes('plain')).toBe(false);
    expect(consumers.queueOf('unknown')).toBeUndefined();
    expect(consumers.receivesAllAttributes('unknown')).toBe(false);
    // The consumer really polls with that client.
    for (let i = 0; i < 100 && client.commands.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(client.commands.some((command) => command instanceof ReceiveMessageCommand)).toBe(true);
  });

  it('stores @SqsMessageHandler metadata under the key the dedup lib reads (SQS_CONSUMER_METHOD)', () => {
    expect(Reflect.getMetadata(SQS_CONSUMER_METHOD, JobsHandler.prototype.handle)).toEqual({
      name: 'jobs',
      batch: false,
    });
  });

  it('knows no consumer without an SqsModule', async () => {
    const bare = await Test.createTestingModule({}).compile();
    const consumers = new NestjsSqsConsumers(bare.get(ModuleRef));
    expect(loadNestjsSqs()).toBeDefined();
    expect(consumers.queueOf('jobs')).toBeUndefined();
    expect(consumers.receivesAllAttributes('jobs')).toBe(false);
    await bare.close();
  });
});
