#!/usr/bin/env node
// The registry this project is developed against does not serve every platform's optional
// binary (e.g. @swc/core-darwin-arm64). `npm install` still records them as optional
// dependencies, and `npm ci` then refuses the lock. Drop the entries that have no package.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const present = new Set(Object.keys(lock.packages));
let dropped = 0;

function resolvable(fromPath, name) {
  let base = fromPath;
  for (;;) {
    if (present.has(`${base ? `${base}/` : ''}node_modules/${name}`)) return true;
    if (!base) return false;
    const cut = base.lastIndexOf('node_modules/');
    base = cut <= 0 ? '' : base.slice(0, cut - 1);
  }
}

for (const [path, pkg] of Object.entries(lock.packages)) {
  if (!pkg.optionalDependencies) continue;
  for (const name of Object.keys(pkg.optionalDependencies)) {
    if (!resolvable(path, name)) {
      delete pkg.optionalDependencies[name];
      dropped++;
    }
  }
  if (Object.keys(pkg.optionalDependencies).length === 0) delete pkg.optionalDependencies;
}

writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lock: dropped ${dropped} optional dependencies the registry does not serve`);
