import { Readable } from 'node:stream';
import { BadRequestException, PayloadTooLargeException } from '@nestjs/common';
import { MAX_SNS_BODY_BYTES, readSnsBody, type SnsHttpRequest } from './sns-body.reader';

const doc = { Type: 'Notification', MessageId: 'm-1' };

function requestWith(fields: { body?: unknown; rawBody?: Buffer }, stream: string[] = []): SnsHttpRequest {
  return Object.assign(
    Readable.from(stream.map((chunk) => Buffer.from(chunk))),
    fields,
  ) as unknown as SnsHttpRequest;
}

describe('readSnsBody', () => {
  it('prefers rawBody, then a text-parsed body, then a JSON-parsed body', async () => {
    await expect(
      readSnsBody(requestWith({ rawBody: Buffer.from(JSON.stringify(doc)), body: 'ignored' })),
    ).resolves.toEqual(doc);
    await expect(readSnsBody(requestWith({ body: JSON.stringify(doc) }))).resolves.toEqual(doc);
    await expect(readSnsBody(requestWith({ body: doc }))).resolves.toBe(doc);
  });

  it('reads the untouched stream when no parser took the text/plain body', async () => {
    const text = JSON.stringify(doc);
    await expect(readSnsBody(requestWith({}, [text.slice(0, 5), text.slice(5)]))).resolves.toEqual(doc);
  });

  it('refuses empty, non-JSON and oversized bodies', async () => {
    await expect(readSnsBody(requestWith({ body: {} }, []))).rejects.toBeInstanceOf(BadRequestException);
    await expect(readSnsBody(requestWith({}, ['not json']))).rejects.toBeInstanceOf(BadRequestException);
    const big = 'x'.repeat(64 * 1024);
    const chunks = Array.from({ length: MAX_SNS_BODY_BYTES / big.length + 1 }, () => big);
    await expect(readSnsBody(requestWith({}, chunks))).rejects.toBeInstanceOf(PayloadTooLargeException);
  });
});
