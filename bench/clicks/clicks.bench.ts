import { killSpawned } from '../../tools/chaos/source.process';
import { type ClickFaultReport, runClickFaults } from '../../tools/chaos/click-faults.scenario';

/**
 * `npm run bench:clicks`: clicks under faults. Two runs: a Postgres outage under load ended by
 * SIGTERM (every redirect must be a row), then SIGKILL under load (the loss, in clicks and in
 * milliseconds of traffic). `--rate N` (default 3000), `--outage-s N` (default 60), `--steady-s`,
 * `--after-s` (default 10 each), `--connections N` (default 50).
 */
async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const rate = arg('rate', 3000);
  const common = { rate, connections: arg('connections', 50), database: `once_bench_clicks_${process.pid}` };
  const log = (message: string) =>
    process.stderr.write(`[clicks ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  const reports: ClickFaultReport[] = [];
  reports.push(
    await runClickFaults({
      ...common,
      steadyMs: arg('steady-s', 10) * 1000,
      outageMs: arg('outage-s', 60) * 1000,
      afterMs: arg('after-s', 10) * 1000,
      ending: 'sigterm',
      log,
    }),
  );
  reports.push(
    await runClickFaults({ ...common, steadyMs: 5000, outageMs: 0, afterMs: 0, ending: 'sigkill', log }),
  );
  console.log(
    '| run | offered/s | redirects/s | redirects | failed | rows | lost | lost as ms of traffic | spill peak | p50 ms | p99 ms |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of reports) {
    const o = r.options;
    const label =
      o.outageMs > 0 ? `${o.outageMs / 1000} s Postgres outage, then SIGTERM` : `SIGKILL under load`;
    const lostMs = r.achievedRate > 0 ? ((r.lost / r.achievedRate) * 1000).toFixed(0) : 'n/a';
    console.log(
      `| ${label} | ${o.rate} | ${r.achievedRate} | ${r.redirected} | ${r.failed} | ${r.rows} | ${r.lost} | ${lostMs} | ${r.spillPeak} | ${r.p50Ms} | ${r.p99Ms} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    killSpawned();
    process.exit(1);
  },
);
