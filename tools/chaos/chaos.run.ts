import { writeFileSync } from 'node:fs';
import { CHAOS_USAGE, ChaosCli, parseChaosArgs } from './chaos.options';
import { ChaosReport, formatChaosReport, formatNaive, NaiveReport } from './chaos.report';
import { runChaos } from './chaos.scenario';
import { runNaiveBaseline } from './naive-baseline';
import { killSpawned } from './source.process';

/** `npm run chaos -- [flags]`: the naive baseline, then the chaos run; exit 1 on any violation. */
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
  const { options } = cli;
  process.stderr.write(`chaos: seed ${options.seed} (pass --seed ${options.seed} to replay the choices)\n`);
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
  const report: ChaosReport = await runChaos(options);
  console.log(formatChaosReport(report, naive));
  if (cli.jsonFile) writeFileSync(cli.jsonFile, JSON.stringify({ chaos: report, naive }, null, 2));
  return report.ok ? 0 : 1;
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
