import fc from 'fast-check';
import { MAX_SEEDS, parseChaosArgs, parseSeedList } from './chaos.options';

const FC_SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`chaos.options.spec: fast-check seed ${FC_SEED} (FC_SEED=${FC_SEED} to replay)`);

describe('parseSeedList', () => {
  it.each([
    ['1-8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['1,3,9', [1, 3, 9]],
    ['1-3,7', [1, 2, 3, 7]],
    ['7', [7]],
    ['0-0', [0]],
    [' 4 , 2-3 ', [4, 2, 3]],
  ])('reads %s', (raw, seeds) => {
    expect(parseSeedList(raw)).toEqual(seeds);
  });

  it.each([
    ['', /empty item/],
    ['1,,2', /empty item/],
    ['1-', /not a whole number/],
    ['-3', /not a whole number/],
    ['a', /not a whole number/],
    ['1.5', /not a whole number/],
    ['1e3', /not a whole number/],
    ['8-1', /runs backwards \(write 1-8\)/],
    ['1-3,2', /seed 2 twice/],
    ['99999999999999999999', /not a whole number/],
    [`0-${MAX_SEEDS}`, /more than 1000 seeds/],
  ])('rejects "%s" with a clear error', (raw, message) => {
    expect(() => parseSeedList(raw)).toThrow(message);
  });

  it('lists every seed of any mix of items once, in order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 30 }),
        (seeds) => {
          // Runs of consecutive seeds become ranges, the rest stay single.
          const items: string[] = [];
          for (let i = 0; i < seeds.length;) {
            let j = i;
            while (j + 1 < seeds.length && seeds[j + 1] === seeds[j] + 1) j++;
            items.push(j > i ? `${seeds[i]}-${seeds[j]}` : String(seeds[i]));
            i = j + 1;
          }
          expect(parseSeedList(items.join(','))).toEqual(seeds);
        },
      ),
      { seed: FC_SEED, numRuns: 200 },
    );
  });
});

describe('parseChaosArgs with --seeds', () => {
  it('runs the listed seeds with the other flags, the first seed in options', () => {
    const cli = parseChaosArgs(['--seeds', '1-3,7', '--users', '2000']);
    expect(cli.seeds).toEqual([1, 2, 3, 7]);
    expect(cli.options).toMatchObject({ seed: 1, users: 2000 });
  });

  it('accepts --seeds=LIST', () => {
    expect(parseChaosArgs(['--seeds=1,3,9']).seeds).toEqual([1, 3, 9]);
  });

  it('keeps --seed N as a single run', () => {
    const cli = parseChaosArgs(['--seed', '42']);
    expect(cli.seeds).toEqual([42]);
    expect(cli.options.seed).toBe(42);
  });

  it('runs one random seed without either flag', () => {
    const cli = parseChaosArgs([]);
    expect(cli.seeds).toEqual([cli.options.seed]);
  });

  it('refuses --seed together with --seeds, a missing list and a bad one', () => {
    expect(() => parseChaosArgs(['--seed', '1', '--seeds', '1-8'])).toThrow(
      '--seed and --seeds exclude each other',
    );
    expect(() => parseChaosArgs(['--seeds'])).toThrow('--seeds needs a value');
    expect(() => parseChaosArgs(['--seeds', '3-1'])).toThrow('runs backwards');
  });
});

describe('the default database', () => {
  it('is per process, so two chaos runs on one Postgres do not drop each other', () => {
    expect(parseChaosArgs([]).options.database).toBe(`once_chaos_${process.pid}`);
    expect(parseChaosArgs(['--database', 'mine']).options.database).toBe('mine');
  });
});

describe('parseChaosArgs --redis', () => {
  it("keeps the claims on the run's redis-server by default", () => {
    expect(parseChaosArgs([]).options.redis).toBe('single');
  });

  it.each([
    [['--redis', 'cluster'], 'cluster'],
    [['--redis=cluster'], 'cluster'],
    [['--redis', 'single'], 'single'],
    [['--redis', 'single', '--redis', 'cluster'], 'cluster'],
  ])('reads %j', (argv, redis) => {
    const cli = parseChaosArgs(argv);
    expect(cli.options.redis).toBe(redis);
    // The redis-server's own faults are another flag's business.
    expect(cli.options).toMatchObject({ redisRestarts: 1, redisPersistence: 'none' });
  });

  it('combines with the redis-server flags and the seeds', () => {
    const cli = parseChaosArgs(['--redis', 'cluster', '--redis-restarts', '2', '--seeds', '1-2']);
    expect(cli.options).toMatchObject({ redis: 'cluster', redisRestarts: 2 });
    expect(cli.seeds).toEqual([1, 2]);
  });

  it.each([['Cluster'], ['sentinel'], ['']])('refuses --redis %j naming the choices', (value) => {
    expect(() => parseChaosArgs(['--redis', value])).toThrow(
      `--redis must be single or cluster, got "${value}"`,
    );
  });

  it('refuses a cluster for a store without Redis', () => {
    expect(() => parseChaosArgs(['--redis', 'cluster', '--worker-env', 'DEDUP_STORE=postgres'])).toThrow(
      /--redis cluster needs a DEDUP_STORE that uses Redis/,
    );
    expect(parseChaosArgs(['--redis', 'cluster', '--worker-env', 'DEDUP_STORE=redis']).options).toMatchObject(
      {
        redis: 'cluster',
        workerEnv: { DEDUP_STORE: 'redis' },
      },
    );
  });

  it('needs a value and is in the usage', () => {
    expect(() => parseChaosArgs(['--redis'])).toThrow(/--redis needs a value/);
    expect(() => parseChaosArgs(['--help'])).toThrow(/--redis single\|cluster/);
  });
});
