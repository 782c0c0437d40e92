import type { ModuleRef } from '@nestjs/core';

/** @ssut/nestjs-sqs is an optional peer dependency: the lib's main entry must load without it. */
const notInstalled = () => {
  throw Object.assign(new Error("Cannot find module '@ssut/nestjs-sqs' from 'nestjs-sqs.consumers.ts'"), {
    code: 'MODULE_NOT_FOUND',
  });
};

describe('without @ssut/nestjs-sqs installed', () => {
  afterEach(() => jest.dontMock('@ssut/nestjs-sqs'));

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
