import { writeFileSync } from 'node:fs';
import { CHAOS_USAGE, ChaosCli, parseChaosArgs } from './chaos.options';
import {
  ChaosReport,
  formatChaosReport,
  formatNaive,
  formatSeedSummary,
  NaiveReport,
  SeedOutcome,
} from './chaos.report';
import { runChaos } from './chaos.scenario';
import { runNaiveBaseline } from './naive-baseline';
import { killSpawned } from './source.process';

/**
 * `npm run chaos -- [flags]`: the naive baseline, then the chaos run (one per seed of `--seeds`,
 * with a summary row each); exit 1 on any violation of any seed.
 */
async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(CHAOS_USAGE);
    return 0;
  }
  let cli: ChaosCli;
  try {
    cli = parseChaosArgs(argv);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    return 2;
  }
  const { options, seeds } = cli;
  const many = seeds.length > 1;
  process.stderr.write(
    many
      ? `chaos: ${seeds.length} seeds (${seeds.join(', ')}), one after the other\n`
      : `chaos: seed ${options.seed} (pass --seed ${options.seed} to replay the choices)\n`,
  );
  let naive: NaiveReport | undefined;
  if (cli.naive !== 'skip') {
    naive = await runNaiveBaseline({
      events: cli.naiveEvents,
      consumers: options.workers,
      duplicateShare: options.duplicateShare,
      seed: options.seed,
      database: options.database,
      timeoutMs: options.timeoutMs,
      verbose: options.verbose,
    });
  }
  if (cli.naive === 'only' && naive) {
    console.log(formatNaive(naive));
    if (cli.jsonFile) writeFileSync(cli.jsonFile, JSON.stringify({ naive }, null, 2));
    return 0;
  }
  if (!many) {
    const report: ChaosReport = await runChaos(options);
    console.log(formatChaosReport(report, naive));
    if (cli.jsonFile) writeFileSync(cli.jsonFile, JSON.stringify({ chaos: report, naive }, null, 2));
    return report.ok ? 0 : 1;
  }
  // Each seed gets fresh emulators, Redis and database: the slot (this minute) and the eventIds
  // repeat across seeds, so dedup records, ledger rows or receive counts left by the previous seed
  // would decide the next one.
  const outcomes: SeedOutcome[] = [];
  for (const [i, seed] of seeds.entries()) {
    process.stderr.write(`chaos: seed ${seed} (${i + 1} of ${seeds.length})\n`);
    const started = Date.now();
    try {
      const report = await runChaos({ ...options, seed });
      outcomes.push({ seed, report });
      console.log(formatChaosReport(report, i === 0 ? naive : undefined));
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      outcomes.push({ seed, error: message, durationMs: Date.now() - started });
      console.log(`Once chaos run: seed ${seed}: the harness failed: ${message}`);
      killSpawned();
    }
    console.log('');
    if (cli.jsonFile) {
      const chaos = outcomes.map((outcome) => ('report' in outcome ? outcome.report : outcome));
      writeFileSync(cli.jsonFile, JSON.stringify({ chaos, naive }, null, 2));
    }
  }
  console.log(formatSeedSummary(outcomes));
  return outcomes.every((outcome) => 'report' in outcome && outcome.report.ok) ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killSpawned();
    process.exit(130);
  });
}
process.once('exit', killSpawned);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    killSpawned();
    process.exit(2);
  },
);
