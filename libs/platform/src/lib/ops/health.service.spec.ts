import { ServiceUnavailableException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { HealthService } from './health.service';
import { OPS_OPTIONS, type OpsOptions } from './ops.options';

const CONFIGURED = 'Configured-Db-Secret-4f1a';

async function healthFailingWith(message: string): Promise<unknown> {
  const options: OpsOptions = {
    app: 'test',
    dependencies: ['postgres'],
    aws: { AWS_REGION: 'us-east-1' } as OpsOptions['aws'],
    probeQueue: 'once-jobs',
    secrets: [CONFIGURED],
  };
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule],
    providers: [
      HealthService,
      { provide: OPS_OPTIONS, useValue: options },
      { provide: DataSource, useValue: { query: () => Promise.reject(new Error(message)) } },
    ],
  }).compile();
  try {
    await moduleRef.get(HealthService).check();
    throw new Error('expected the check to fail');
  } catch (error) {
    if (!(error instanceof ServiceUnavailableException)) throw error;
    return error.getResponse();
  } finally {
    await moduleRef.close();
  }
}

describe('HealthService', () => {
  it('names the dependency that is down without the secrets its driver put in the message', async () => {
    const answer = JSON.stringify(
      await healthFailingWith(
        `connect to postgres://once:${CONFIGURED}@db.internal:5432/once failed; auth Bearer abcdef123456789 password=hunter2hunter2`,
      ),
    );
    expect(answer).toContain('"postgres"');
    expect(answer).toContain('db.internal');
    for (const secret of [CONFIGURED, 'abcdef123456789', 'hunter2hunter2'])
      expect(answer).not.toContain(secret);
  });

  it('cuts a long message', async () => {
    const answer = JSON.stringify(await healthFailingWith(`failed: ${'x'.repeat(5_000)}`));
    expect(answer.length).toBeLessThan(1_000);
  });
});
