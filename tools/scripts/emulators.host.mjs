// Runs the SQS and SES emulators in a process of their own for e2e runs, the chaos run and the pipeline
// bench: fauxqs is ESM-only, so a CommonJS caller (jest included) cannot load it in-process, and a
// separate process keeps the emulators' event loop off the orchestrator's. Started with fork():
// sends `{ ready: {...} }` once listening, stops when told to or when the parent goes away.
import { emulatorEnv, startEmulators } from './emulators.mjs';

const options = JSON.parse(process.argv[2] ?? '{}');
const emulators = await startEmulators({ sqsPort: 0, sesPort: 0, ...options });

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await emulators.stop().catch(() => undefined);
  process.exit(0);
}
process.on('message', (message) => {
  if (message === 'stop') void stop();
});
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

process.send?.({
  ready: {
    sqsEndpoint: emulators.sqsEndpoint,
    sesEndpoint: emulators.sesEndpoint,
    region: emulators.region,
    queueUrls: emulators.queueUrls,
    env: emulatorEnv(emulators),
  },
});
