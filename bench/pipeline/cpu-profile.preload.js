// Preloaded (NODE_OPTIONS=--require) into every consumer process by `--cpu-prof <dir>`: Node 20 refuses
// --cpu-prof in NODE_OPTIONS, and the bench wants only the measured window, not the boot. The first
// SIGWINCH (ignored by default, and not one of the signals Nest's shutdown hooks take) starts the V8 CPU profiler, the second stops it and writes <dir>/<pid>.cpuprofile.
const { Session } = require('node:inspector');
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on('SIGWINCH', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () => session.post('Profiler.start'));
      return;
    }
    running = false;
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
