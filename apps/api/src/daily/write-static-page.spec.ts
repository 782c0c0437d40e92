import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeStaticPage } from './write-static-page';

describe('write-static-page', () => {
  let out: string;
  beforeEach(async () => {
    out = await mkdtemp(join(tmpdir(), 'once-daily-'));
  });
  afterEach(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('writes daily/index.html with the given site, allowlist and UTM defaults', async () => {
    const file = await writeStaticPage([
      '--out',
      out,
      '--base',
      'https://site.example',
      '--allow',
      '/updates/',
      '--allow',
      '/p/',
    ]);
    expect(file).toBe(join(out, 'daily', 'index.html'));
    const html = await readFile(file, 'utf8');
    const config = JSON.parse(/id="once-tracking-config">([^<]*)</.exec(html)?.[1] ?? 'null');
    expect(config).toEqual({
      origin: 'https://site.example',
      utm: { source: 'email', medium: 'email', campaign: 'Daily_Notification' },
      allow: ['/updates/', '/p/'],
      invalid: 'error-page',
      maxTargetLength: 2048,
    });
  });

  it('refuses missing or invalid arguments', async () => {
    await expect(writeStaticPage(['--out', out])).rejects.toThrow('--out and --base are required');
    await expect(
      writeStaticPage(['--out', out, '--base', 'https://s.example', '--invalid', 'x']),
    ).rejects.toThrow('--invalid');
    await expect(writeStaticPage(['--out', out, '--base', 'https://s.example/app'])).rejects.toThrow(
      'baseUrl',
    );
    await expect(
      writeStaticPage(['--out', out, '--base', 'https://s.example', '--secret', 'x']),
    ).rejects.toThrow("'--secret'");
  });
});
