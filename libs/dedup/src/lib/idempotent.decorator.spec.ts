import { Injectable, SetMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import { IDEMPOTENT_RUNNER_PROPERTY, IDEMPOTENT_METADATA, SQS_CONSUMER_METHOD } from './dedup.constants';
import { getIdempotentMetadata, Idempotent } from './idempotent.decorator';
import { IdempotentHandlerRunner, type IdempotentCall } from './sqs/idempotent-handler.runner';
import { Transactional } from './transactional.decorator';

const CUSTOM = 'custom:meta';

@Injectable()
class Handlers {
  @Idempotent({ scope: 'above' })
  @SqsMessageHandler('jobs', false)
  @SetMetadata(CUSTOM, 'kept')
  async above(message: { Body: string }): Promise<string> {
    return `above ${message.Body}`;
  }

  @SqsMessageHandler('emails', true)
  @Idempotent()
  async below(messages: unknown[]): Promise<number> {
    return messages.length;
  }

  @Transactional()
  @Idempotent()
  async transactionalAbove(): Promise<string> {
    return 'tx';
  }

  @Idempotent()
  @Transactional()
  async transactionalBelow(): Promise<string> {
    return 'tx';
  }
}

/** What @ssut/nestjs-sqs (through @golevelup discovery) reads: metadata on prototype[method]. */
const sqsMetaOf = (method: keyof Handlers) =>
  Reflect.getMetadata(SQS_CONSUMER_METHOD, Handlers.prototype[method]);

describe('@Idempotent', () => {
  it('keeps @SqsMessageHandler metadata visible on the wrapper whether it sits above or below', () => {
    expect(sqsMetaOf('above')).toEqual({ name: 'jobs', batch: false });
    expect(sqsMetaOf('below')).toEqual({ name: 'emails', batch: true });
    expect(Reflect.getMetadata(CUSTOM, Handlers.prototype.above)).toBe('kept');
  });

  it('replaces the method with a wrapper at decoration time, keeping its name and recording its spec', () => {
    expect(Handlers.prototype.above.name).toBe('above');
    expect(Reflect.hasOwnMetadata(IDEMPOTENT_METADATA, Handlers.prototype.above)).toBe(true);
    expect(getIdempotentMetadata(Handlers.prototype.above)).toMatchObject({ scope: 'above' });
    expect(getIdempotentMetadata(Handlers.prototype.below)).toMatchObject({ scope: 'Handlers.below' });
  });

  it('registers one property injection of the dedup runner per class', () => {
    const properties = Reflect.getMetadata('self:properties_metadata', Handlers) as {
      key: symbol;
      type: unknown;
    }[];
    expect(properties.filter((p) => p.key === IDEMPOTENT_RUNNER_PROPERTY)).toEqual([
      { key: IDEMPOTENT_RUNNER_PROPERTY, type: IdempotentHandlerRunner },
    ]);
  });

  it('reaches the injected runner with the SQS handler metadata, the arguments and the original method', async () => {
    const calls: IdempotentCall[] = [];
    const fake = {
      invoke: async (call: IdempotentCall) => {
        calls.push(call);
        return call.original.apply(call.thisArg, [...call.args]);
      },
    };
    const moduleRef = await Test.createTestingModule({
      providers: [Handlers, { provide: IdempotentHandlerRunner, useValue: fake }],
    }).compile();
    const handlers = moduleRef.get(Handlers);

    expect((handlers as unknown as Record<symbol, unknown>)[IDEMPOTENT_RUNNER_PROPERTY]).toBe(fake);
    await expect(handlers.above({ Body: 'b' })).resolves.toBe('above b');
    await expect(handlers.below([1, 2])).resolves.toBe(2);
    await handlers.transactionalAbove();
    await handlers.transactionalBelow();

    expect(calls.map((call) => [call.spec.scope, call.handler, call.spec.transactional])).toEqual([
      ['above', { name: 'jobs', batch: false }, false],
      ['Handlers.below', { name: 'emails', batch: true }, false],
      ['Handlers.transactionalAbove', undefined, true],
      ['Handlers.transactionalBelow', undefined, true],
    ]);
    expect(calls[0]?.thisArg).toBe(handlers);
    await moduleRef.close();
  });

  it('fails loudly, never running the method unprotected, when the runner was not injected', async () => {
    let ran = false;
    class Plain {
      @Idempotent()
      async work(): Promise<void> {
        ran = true;
      }
    }
    await expect(new Plain().work()).rejects.toThrow(
      /IdempotencyService was not injected.*DedupModule\.forRoot/,
    );
    expect(ran).toBe(false);
  });

  it('refuses invalid scopes and static methods at decoration time', () => {
    expect(() => Idempotent({ scope: 'a:b' })(Handlers.prototype, 'x', { value: () => undefined })).toThrow(
      TypeError,
    );
    expect(() => Idempotent()(Handlers, 'x', { value: () => undefined })).toThrow(/instance methods only/);
  });
});
