/* eslint-disable @nx/enforce-module-boundaries -- the chaos harness (project `tools`) has no import path of its own */
import { type ChaosReport, formatChaosReport } from '../../../tools/chaos/chaos.report';
import { runChaos } from '../../../tools/chaos/chaos.scenario';
/* eslint-enable @nx/enforce-module-boundaries */

const USERS = 200;

/** CHAOS_SEED replays a run's random choices; otherwise every run tries new ones. */
function chaosSeed(): number {
  const raw = process.env.CHAOS_SEED;
  if (raw === undefined || raw === '') return Math.floor(Math.random() * 1_000_000);
  if (!/^\d+$/.test(raw)) throw new Error(`CHAOS_SEED must be a whole number, got "${raw}"`);
  return Number(raw);
}

const SEED = chaosSeed();

// `npm run chaos` in small: real worker processes (from source) behind fault proxies, real
// fauxqs/SES emulators, Postgres and a redis-server of the run's own.
describe('chaos smoke: duplicates, failed deletes, SIGKILLs, a slow send, a Redis restart, malformed messages', () => {
  let report: ChaosReport;

  beforeAll(async () => {
    // Printed before the run, so even a timeout leaves the seed to replay.
    process.stderr.write(
      `chaos smoke: seed ${SEED} (replay: CHAOS_SEED=${SEED} npx jest -c apps/platform-e2e/jest.e2e.config.js chaos-smoke)\n`,
    );
    report = await runChaos({
      users: USERS,
      workers: 2,
      duplicateShare: 0.2,
      seed: SEED,
      timeoutMs: 55_000,
      visibilityTimeout: 5,
      maxReceiveCount: 5,
      deleteFailureShare: 0.1,
      slowSends: 1,
      slowDelayMs: 7_000,
      kills: 1,
      fanoutKills: 1,
      redisRestarts: 1,
      redisDowntimeMs: 1_000,
      malformed: 1,
      jobCopies: 2,
      database: `once_chaos_smoke_${process.pid}`,
      verbose: false,
    });
  }, 90_000);

  afterAll(() => {
    if (report && !report.ok) console.log(`chaos smoke seed ${SEED}:\n${formatChaosReport(report)}`);
  });

  it('ran the seed it printed', () => {
    expect(report.seed).toBe(SEED);
  });

  it('performed every injection it planned', () => {
    const short = report.injections.filter((injection) => injection.done < injection.target);
    expect(short).toEqual([]);
    expect(report.kills.map((kill) => kill.kind).sort()).toEqual(['fan-out', 'send']);
  });

  it('never mailed anyone twice and lost no one silently', () => {
    expect(report.drained).toBe(true);
    expect(report.delivery).toMatchObject({ expected: USERS, duplicates: 0, unexpected: 0 });
    expect(report.silentlyMissing).toEqual([]);
    // An `unknown` row is a send a kill left undecided; it must be one a killed worker held.
    expect(report.unknown.unexplained).toEqual([]);
    expect(report.ledger.effective).toMatchObject({ failed: [], pending: [] });
  });

  it('delivered exactly one digest to every user once the unknown sends SES never got were resent', () => {
    expect(report.operator.resent).toBe(report.unknown.notDelivered.length);
    expect(report.operator.after).toMatchObject({
      expected: USERS,
      emails: USERS,
      recipients: USERS,
      duplicates: 0,
      missing: 0,
    });
  });

  it('dead-lettered every malformed message, visible through the admin API, and no well-formed one', () => {
    expect(report.deadLetters.adminApi).toBe('ok');
    expect(report.deadLetters.injected).toBe(4);
    expect(report.deadLetters.found).toBe(report.deadLetters.injected);
    expect(report.deadLetters.digestMessages + report.deadLetters.jobMessages).toBe(0);
  });

  it('reports no violation at all', () => {
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
