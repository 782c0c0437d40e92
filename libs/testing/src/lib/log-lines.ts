import { Writable } from 'node:stream';

/** A log destination for tests (`bootstrap({ logDestination })`): keeps every line the app writes. */
export class LogLines extends Writable {
  private partial = '';
  private readonly complete: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    const parts = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = parts.pop() ?? '';
    this.complete.push(...parts.filter(Boolean));
    done();
  }

  /** Every complete line so far. */
  get lines(): string[] {
    return [...this.complete];
  }

  /** Everything written so far, as one text. */
  get text(): string {
    return [...this.complete, this.partial].join('\n');
  }

  /** The lines parsed as JSON (pino writes one object per line). */
  records(): Array<Record<string, unknown>> {
    return this.complete.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}
