import { BadRequestException, PayloadTooLargeException } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';

/** SNS messages are at most 256 KB; the envelope adds signatures and URLs. */
export const MAX_SNS_BODY_BYTES = 512 * 1024;

/** A request as Express leaves it: maybe parsed (`body`), maybe with `rawBody` (Nest `rawBody: true`). */
export type SnsHttpRequest = IncomingMessage & { body?: unknown; rawBody?: Buffer };

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestException('SNS body is not JSON');
  }
}

async function readStream(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_SNS_BODY_BYTES) throw new PayloadTooLargeException('SNS body too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The JSON document SNS posted. SNS sends `Content-Type: text/plain`, which Nest's default JSON
 * parser skips: this uses `rawBody` or a text-parsed body when the app set one up, an
 * already-parsed object, or else reads the untouched request stream itself.
 */
export async function readSnsBody(request: SnsHttpRequest): Promise<unknown> {
  if (Buffer.isBuffer(request.rawBody) && request.rawBody.length > 0)
    return parseJson(request.rawBody.toString('utf8'));
  if (typeof request.body === 'string' && request.body.length > 0) return parseJson(request.body);
  if (Buffer.isBuffer(request.body) && request.body.length > 0)
    return parseJson(request.body.toString('utf8'));
  if (request.body && typeof request.body === 'object' && Object.keys(request.body).length > 0)
    return request.body;
  if (request.readableEnded || !request.readable) throw new BadRequestException('SNS body is empty');
  const text = await readStream(request);
  if (text.length === 0) throw new BadRequestException('SNS body is empty');
  return parseJson(text);
}
