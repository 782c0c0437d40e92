import { loadConfig } from '@once/platform';
import { workerEnvSchema } from './worker.config';

describe('worker config', () => {
  it('refuses DEDUP_REDIS_CLUSTER_NODES with a store that has no Redis, naming both variables', () => {
    let message = '';
    try {
      loadConfig('worker', workerEnvSchema, {
        DEDUP_STORE: 'postgres',
        DEDUP_REDIS_CLUSTER_NODES: '127.0.0.1:7000',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/DEDUP_REDIS_CLUSTER_NODES/);
    expect(message).toMatch(/DEDUP_STORE/);
  });

  it('takes cluster seeds with a Redis store', () => {
    const config = loadConfig('worker', workerEnvSchema, {
      NODE_ENV: 'test',
      DEDUP_STORE: 'redis',
      DEDUP_REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001',
    });
    expect(config.DEDUP_REDIS_CLUSTER_NODES).toBeDefined();
  });
});
