import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The header a request id is read from and returned in. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Whether a caller's `X-Request-Id` is kept: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. */
export function isValidRequestId(value: unknown): value is string {
  return typeof value === 'string' && VALID_REQUEST_ID.test(value);
}

/**
 * The request's id, decided once: the incoming `X-Request-Id` when valid, else a new UUID. Stored as
 * `req.id` (what pino-http logs as `reqId` and the admin error filter reports) and sent back in the
 * response's `X-Request-Id`. Later calls return the stored id.
 */
export function assignRequestId(req: IncomingMessage & { id?: unknown }, res: ServerResponse): string {
  if (isValidRequestId(req.id)) return req.id;
  const incoming = req.headers['x-request-id'];
  const id = isValidRequestId(incoming) ? incoming : randomUUID();
  req.id = id;
  if (!res.headersSent) res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/** Connect-style middleware running {@link assignRequestId}: mount it first, so every answer carries the id. */
export function requestIdMiddleware(
  req: IncomingMessage & { id?: unknown },
  res: ServerResponse,
  next: () => void,
): void {
  assignRequestId(req, res);
  next();
}
