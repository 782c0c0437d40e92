import { Logger } from '@nestjs/common';
import type { Repository } from 'typeorm';
import { ClickInput, ClickRecorder } from './click.recorder';
import type { TrackingClick } from './tracking-click.entity';
import { parseTrackingOptions } from './tracking.options';

type Row = Omit<TrackingClick, 'id'>;

class FakeRepository {
  readonly batches: Row[][] = [];
  failuresLeft = 0;
  gate: Promise<void> | null = null;

  async insert(rows: Row[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('connection refused');
    }
    this.batches.push([...rows]);
  }

  get paths(): string[] {
    return this.batches.flat().map((row) => row.path);
  }
}

const click = (n: number): ClickInput => ({
  path: `/p/${n}`,
  campaign: 'Daily_Notification',
  recipientId: String(n),
  userAgentClass: 'browser',
  bot: false,
});

function setup(clickRecorder: { batchSize?: number; flushIntervalMs?: number; maxBuffered?: number } = {}) {
  const repository = new FakeRepository();
  const options = parseTrackingOptions({
    baseUrl: 'https://s.example',
    secrets: ['x'.repeat(32)],
    clickRecorder,
  });
  const recorder = new ClickRecorder(repository as unknown as Repository<TrackingClick>, options);
  return { repository, recorder };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ClickRecorder', () => {
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  it('buffers without touching the database, then writes in batches of batchSize', async () => {
    const { repository, recorder } = setup({ batchSize: 3 });
    recorder.record(click(1));
    recorder.record(click(2));
    await tick();
    expect(repository.batches).toHaveLength(0);
    expect(recorder.pending).toBe(2);

    for (let n = 3; n <= 7; n++) recorder.record(click(n));
    await recorder.flush();
    expect(repository.batches.map((batch) => batch.length)).toEqual([3, 3, 1]);
    expect(repository.paths).toEqual(['/p/1', '/p/2', '/p/3', '/p/4', '/p/5', '/p/6', '/p/7']);
    expect(recorder.pending).toBe(0);
  });

  it('stores every field, with defaults for the optional ones', async () => {
    const { repository, recorder } = setup();
    const at = new Date('2026-11-22T07:00:00Z');
    recorder.record({
      ...click(1),
      messageKey: 'k',
      content: 'c',
      term: 't',
      bot: true,
      botReason: 'head-request',
      clickedAt: at,
    });
    recorder.record({ path: '/x', campaign: 'C', userAgentClass: 'empty', bot: true });
    expect(await recorder.flush()).toBe(2);
    expect(repository.batches[0][0]).toEqual({
      clickedAt: at,
      path: '/p/1',
      campaign: 'Daily_Notification',
      recipientId: '1',
      messageKey: 'k',
      content: 'c',
      term: 't',
      userAgentClass: 'browser',
      bot: true,
      botReason: 'head-request',
    });
    expect(repository.batches[0][1]).toMatchObject({ recipientId: null, messageKey: null, botReason: null });
    expect(repository.batches[0][1].clickedAt).toBeInstanceOf(Date);
  });

  it('flushes by itself when a batch fills up', async () => {
    const { repository, recorder } = setup({ batchSize: 2 });
    recorder.record(click(1));
    recorder.record(click(2));
    await tick();
    expect(repository.batches).toEqual([
      [expect.objectContaining({ path: '/p/1' }), expect.objectContaining({ path: '/p/2' })],
    ]);
  });

  it('flushes on its interval, and stops and drains before shutdown', async () => {
    jest.useFakeTimers();
    const { repository, recorder } = setup({ flushIntervalMs: 500 });
    recorder.onModuleInit();
    recorder.record(click(1));
    await jest.advanceTimersByTimeAsync(500);
    expect(repository.paths).toEqual(['/p/1']);

    recorder.record(click(2));
    await recorder.beforeApplicationShutdown();
    expect(repository.paths).toEqual(['/p/1', '/p/2']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('keeps a failed batch, in order, for the next flush', async () => {
    const { repository, recorder } = setup({ batchSize: 2 });
    repository.failuresLeft = 1;
    recorder.record(click(1));
    await recorder.flush();
    recorder.record(click(2));
    recorder.record(click(3));
    await tick();
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ msg: 'Could not write clicks; will retry', error: 'connection refused' }),
    );
    await recorder.flush();
    expect(repository.paths).toEqual(['/p/1', '/p/2', '/p/3']);
  });

  it('runs one flush at a time, so nothing is written twice', async () => {
    const { repository, recorder } = setup({ batchSize: 2 });
    let open: () => void = () => undefined;
    repository.gate = new Promise<void>((resolve) => (open = resolve));
    recorder.record(click(1));
    const first = recorder.flush();
    recorder.record(click(2));
    const second = recorder.flush();
    repository.gate = null;
    open();
    await Promise.all([first, second]);
    expect(repository.paths).toEqual(['/p/1', '/p/2']);
  });

  it('drops the oldest clicks beyond maxBuffered and says so', async () => {
    const { repository, recorder } = setup({ batchSize: 100, maxBuffered: 3 });
    for (let n = 1; n <= 5; n++) recorder.record(click(n));
    expect(recorder.pending).toBe(3);
    await recorder.flush();
    expect(repository.paths).toEqual(['/p/3', '/p/4', '/p/5']);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ dropped: 2 }));
  });

  it('reports clicks it could not write at shutdown', async () => {
    const { repository, recorder } = setup();
    repository.failuresLeft = 1;
    recorder.record(click(1));
    await recorder.beforeApplicationShutdown();
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ lost: 1 }));
  });
});
