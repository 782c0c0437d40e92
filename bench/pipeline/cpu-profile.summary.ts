import { readFileSync } from 'node:fs';

/**
 * Summarises `.cpuprofile` files (as `--cpu-prof` writes them): self time by area (a node_modules
 * package, a libs/apps project, node internals, GC) and the functions with the most self and
 * total time. `node -r @swc-node/register bench/pipeline/cpu-profile.summary.ts <file>... [--top 25]`
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1];
  const project = /\/((?:libs|apps|bench|tools)\/[^/]+)\//.exec(url);
  if (project) return project[1];
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

function summarise(file: string, top: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const label = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const short = url.replace(/^.*node_modules\//, '').replace(/^.*\/(libs|apps|bench|tools)\//, '$1/');
    return `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  let all = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    all += us;
    if (node.callFrame.functionName === '(idle)') continue;
    busy += us;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    const where = area(node.callFrame.url, node.callFrame.functionName);
    areas.set(where, (areas.get(where) ?? 0) + us);
    const seen = new Set<string>();
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const ancestor = byId.get(cursor);
      if (!ancestor) break;
      const name = label(ancestor);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + us);
    }
  }
  const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;
  const share = (us: number) => `${((us / busy) * 100).toFixed(1)}%`;
  const list = (map: Map<string, number>, count: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, us]) => `  ${share(us).padStart(6)} ${ms(us).padStart(8)}  ${name}`);
  return [
    `${file}: ${ms(busy)} busy of ${ms(all)} profiled`,
    'self time by area:',
    ...list(areas, 15),
    'self time by function:',
    ...list(self, top),
    'total (inclusive) time by function:',
    ...list(total, top),
  ].join('\n');
}

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25;
if (args.length === 0) throw new Error('usage: cpu-profile.summary.ts <file.cpuprofile>... [--top 25]');
console.log(args.map((file) => summarise(file, top)).join('\n\n'));
