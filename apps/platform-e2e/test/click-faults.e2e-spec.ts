/* eslint-disable @nx/enforce-module-boundaries -- the fault harness (project `tools`) has no import path of its own */
import { type ClickFaultReport, runClickFaults } from '../../../tools/chaos/click-faults.scenario';
/* eslint-enable @nx/enforce-module-boundaries */

const RATE = 300;

/**
 * `npm run bench:clicks` in small: a real api (from source) under a paced load of valid links,
 * Postgres cut off behind a proxy for 1.5 s, then the api SIGKILLed under load; a second api
 * drains what the first spilled. Every click the outage pushed to Redis is in Postgres; the kill
 * loses at most the clicks of about one flush interval (100 ms).
 */
describe('clicks under faults: a Postgres outage loses none, a SIGKILL only the last ~100 ms', () => {
  let report: ClickFaultReport;

  beforeAll(async () => {
    report = await runClickFaults({
      rate: RATE,
      connections: 10,
      steadyMs: 1000,
      outageMs: 1500,
      afterMs: 1500,
      ending: 'sigkill',
      database: `once_click_faults_${process.pid}`,
    });
    process.stderr.write(`click faults: ${JSON.stringify(report)}\n`);
  }, 120_000);

  it('served the load: redirects at close to the offered rate', () => {
    expect(report.redirected).toBeGreaterThan(RATE * 3);
    expect(report.achievedRate).toBeGreaterThan(RATE * 0.8);
  });

  it('spilled the outage’s clicks to Redis, and drained them all into Postgres', () => {
    // About 1.5 s of clicks went to the stream; all of them, and the rest, are rows now.
    expect(report.spillPeak).toBeGreaterThan(RATE);
    expect(report.rows).toBeLessThanOrEqual(report.redirected);
  });

  it('lost no more to the SIGKILL than the clicks of the last flush interval and the write in flight', () => {
    // 100 ms of clicks, doubled for the write in flight and the timer's lag on a busy machine.
    expect(report.lost).toBeGreaterThanOrEqual(0);
    expect(report.lost).toBeLessThanOrEqual(Math.ceil(report.achievedRate * 0.2) + 5);
  });
});
