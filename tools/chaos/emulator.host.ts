import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { trackChild } from './source.process';

export interface EmulatorHostOptions {
  visibilityTimeout: number;
  maxReceiveCount: number;
  queues?: string[];
}

export interface EmulatorHost {
  sqsEndpoint: string;
  sesEndpoint: string;
  region: string;
  /** Queue URLs by name, `<name>-dlq` included. */
  queueUrls: Record<string, string>;
  /** AWS_* and *_ENDPOINT variables for the apps. */
  env: Record<string, string>;
  pid: number;
  stop(): Promise<void>;
}

type Ready = Omit<EmulatorHost, 'stop' | 'pid'>;

/** Starts fauxqs and aws-ses-v2-local (tools/scripts/emulators.mjs) on free ports in a child process. */
export async function startEmulatorHost(options: EmulatorHostOptions): Promise<EmulatorHost> {
  const child: ChildProcess = fork(
    join(__dirname, '..', 'scripts', 'emulators.host.mjs'),
    [JSON.stringify(options)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    },
  );
  trackChild(child);
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('emulators did not start within 30 s')), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`emulator host exited with ${code} before it was ready`));
    });
    child.on('message', (message: { ready?: Ready }) => {
      if (!message.ready) return;
      clearTimeout(timer);
      resolve(message.ready);
    });
  });
  return {
    ...ready,
    pid: child.pid ?? 0,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      if (child.connected) child.send('stop');
      else child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
