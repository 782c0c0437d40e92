// Entry point of `npm run bench:dedup`. The benchmark's handlers use decorators, which
// @swc-node/register compiles only with a tsconfig that enables them; without a root
// tsconfig.json this re-runs itself with bench/dedup/tsconfig.json (which also maps @once/*).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const project = join(__dirname, 'tsconfig.json');

if (process.env.SWC_NODE_PROJECT !== project) {
  const child = spawnSync(
    process.execPath,
    ['-r', '@swc-node/register', __filename, ...process.argv.slice(2)],
    {
      stdio: 'inherit',
      env: { ...process.env, SWC_NODE_PROJECT: project },
    },
  );
  process.exit(child.status ?? 1);
} else {
  // Loaded only now, under the decorator-aware compiler options.
  const scenarios = require('./dedup.scenarios') as typeof import('./dedup.scenarios');
  scenarios.main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
