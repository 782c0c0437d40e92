import type { ModuleRef } from '@nestjs/core';
import Redis from 'ioredis';

/** @ssut/nestjs-sqs and @aws-sdk/client-sqs are optional peers: the lib's main entry must load without them. */
const missing = (name: string) => () => {
  throw Object.assign(new Error(`Cannot find module '${name}' from 'nestjs-sqs.consumers.ts'`), {
    code: 'MODULE_NOT_FOUND',
  });
};
const notInstalled = missing('@ssut/nestjs-sqs');

describe('without @ssut/nestjs-sqs installed', () => {
  afterEach(() => {
    jest.dontMock('@ssut/nestjs-sqs');
    jest.dontMock('@aws-sdk/client-sqs');
  });

  it('nor @aws-sdk/client-sqs: DedupModule boots and IdempotencyService.run runs once per key', async () => {
    let testing: typeof import('@nestjs/testing') | undefined;
    let dedup: typeof import('../../index') | undefined;
    let memory: typeof import('../stores/memory.store') | undefined;
    let store: typeof import('../engine/store.provider') | undefined;
    jest.isolateModules(() => {
      jest.doMock('@ssut/nestjs-sqs', notInstalled);
      jest.doMock('@aws-sdk/client-sqs', missing('@aws-sdk/client-sqs'));
      testing = require('@nestjs/testing'); // the same @nestjs/core registry as the lib's
      dedup = require('../../index');
      memory = require('../stores/memory.store');
      store = require('../engine/store.provider');
    });
    if (!testing || !dedup || !memory || !store) throw new Error('the main entry did not load');
    // The app's client, never connected: the store under test is a MemoryStore.
    const redis = new Redis({ lazyConnect: true });
    const moduleRef = await testing.Test.createTestingModule({
      imports: [dedup.DedupModule.forRoot({ store: 'redis', redis })],
    })
      .overrideProvider(store.DEDUP_STORE)
      .useValue(new memory.MemoryStore())
      .compile();
    const service = moduleRef.get(dedup.IdempotencyService);
    let effects = 0;
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await service.run('evt-1', async () => ++effects));
    expect({ effects, answers }).toEqual({ effects: 1, answers: [1, 1, 1] });
    await moduleRef.close();
    redis.disconnect();
  });

  it("the runner's queue operations answer as for an unknown consumer, loading no SQS SDK", async () => {
    let lazy: typeof import('./queue-ops.lazy') | undefined;
    jest.isolateModules(() => {
      jest.doMock('@ssut/nestjs-sqs', notInstalled);
      jest.doMock('@aws-sdk/client-sqs', missing('@aws-sdk/client-sqs'));
      lazy = require('./queue-ops.lazy');
    });
    if (!lazy) throw new Error('queue-ops.lazy did not load');
    const ops = new lazy.LazyQueueOps({ get: () => ({}) } as unknown as ModuleRef);
    const message = { MessageId: 'm1', ReceiptHandle: 'r1', Body: '{}' };
    expect(ops.queueOf('jobs')).toBeUndefined();
    await expect(ops.deferralTarget('jobs')).resolves.toBeUndefined();
    await expect(ops.resend('jobs', [message], 5)).resolves.toEqual(new Set());
    await expect(ops.deadLetter('jobs', [{ message, reason: 'x' }])).resolves.toEqual(new Set());
    await expect(ops.changeVisibility('jobs', [message], 5)).resolves.toBeUndefined();
    await expect(ops.deleteSettled('jobs', [message])).resolves.toBeUndefined();
  });

  it('the main entry (@once/dedup) loads and IdempotencyService is there', () => {
    jest.isolateModules(() => {
      jest.doMock('@ssut/nestjs-sqs', notInstalled);
      const dedup = require('../../index') as typeof import('../../index');
      expect(typeof dedup.IdempotencyService).toBe('function');
      expect(typeof dedup.DedupModule.forRoot).toBe('function');
    });
  });

  it('the adapter knows no consumer', () => {
    jest.isolateModules(() => {
      jest.doMock('@ssut/nestjs-sqs', notInstalled);
      const { loadNestjsSqs, NestjsSqsConsumers } =
        require('./nestjs-sqs.consumers') as typeof import('./nestjs-sqs.consumers');
      const moduleRef = {
        get: () => ({ getQueueInfo: () => ({ sqs: {}, queueUrl: 'q' }) }),
      } as unknown as ModuleRef;
      expect(loadNestjsSqs()).toBeUndefined();
      expect(new NestjsSqsConsumers(moduleRef).queueOf('jobs')).toBeUndefined();
    });
  });

  it('another failure while loading it is not taken for its absence', () => {
    jest.isolateModules(() => {
      jest.doMock('@ssut/nestjs-sqs', () => {
        throw new Error('broken install');
      });
      const { loadNestjsSqs } = require('./nestjs-sqs.consumers') as typeof import('./nestjs-sqs.consumers');
      expect(() => loadNestjsSqs()).toThrow('broken install');
    });
  });
});
