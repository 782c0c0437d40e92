import { MAX_KEY_BYTES, MAX_KEY_PREFIX_BYTES, MAX_SCOPE_BYTES } from './dedup.constants';
import { DedupError } from './dedup.errors';

/** Longest stored key a Postgres page cursor can stand for: keyPrefix + scope + ':' + key. */
const MAX_CURSOR_KEY_BYTES = MAX_KEY_PREFIX_BYTES + MAX_SCOPE_BYTES + 1 + MAX_KEY_BYTES;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
// eslint-disable-next-line no-control-regex -- exactly the characters no stored key holds
const NOT_IN_KEYS = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;
/** A Redis SCAN cursor: an unsigned 64-bit number; 0 ends a scan, so no page hands it out. */
const SCAN_CURSOR = /^[1-9][0-9]{0,19}$/;
const MAX_SCAN_CURSOR = 2n ** 64n - 1n;

/**
 * `IdempotencyService.list` was given a `cursor` its store did not hand out (the `nextCursor` of
 * a previous page is the only valid one). A caller error: an HTTP API answers it 400.
 */
export class InvalidListCursorError extends DedupError {
  constructor(readonly reason: string) {
    super(`Invalid list cursor: ${reason}`);
  }
}

/** The Postgres store's cursor: the last stored key of the page, base64url of its UTF-8. */
export function encodeKeyCursor(storageKey: string): string {
  return Buffer.from(storageKey, 'utf8').toString('base64url');
}

/**
 * The stored key a {@link encodeKeyCursor} cursor stands for.
 * @throws InvalidListCursorError unless `cursor` is exactly what the encoder makes of a key no
 * store would refuse (canonical base64url of well-formed UTF-8, no control character).
 */
export function decodeKeyCursor(cursor: string): string {
  if (cursor.length === 0 || cursor.length > Math.ceil((MAX_CURSOR_KEY_BYTES * 4) / 3))
    throw new InvalidListCursorError('not a cursor of this store');
  const bytes = Buffer.from(cursor, 'base64url');
  if (bytes.toString('base64url') !== cursor) throw new InvalidListCursorError('not base64url');
  let key: string;
  try {
    key = UTF8.decode(bytes);
  } catch {
    throw new InvalidListCursorError('not a cursor of this store');
  }
  if (NOT_IN_KEYS.test(key)) throw new InvalidListCursorError('not a cursor of this store');
  return key;
}

/**
 * A Redis store cursor (the SCAN cursor Redis returned) as it may be sent back to SCAN.
 * @throws InvalidListCursorError unless it is a SCAN cursor Redis could have returned.
 */
export function checkScanCursor(cursor: string): string {
  if (!SCAN_CURSOR.test(cursor) || BigInt(cursor) > MAX_SCAN_CURSOR)
    throw new InvalidListCursorError('not a cursor of this store');
  return cursor;
}

/** A Redis Cluster cursor, decoded: the master being scanned (`host:port`) and its SCAN cursor there. */
export interface ClusterScanCursor {
  readonly node: string;
  /** '0': the scan of `node` has not started yet. */
  readonly scan: string;
}

const CLUSTER_CURSOR =
  /^([0-9A-Za-z._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):([1-9][0-9]{0,4}) (0|[1-9][0-9]{0,19})$/;

/** The Redis Cluster store's cursor: base64url of `host:port scanCursor`. */
export function encodeClusterScanCursor(cursor: ClusterScanCursor): string {
  return Buffer.from(`${cursor.node} ${cursor.scan}`, 'utf8').toString('base64url');
}

/**
 * The node and SCAN cursor a {@link encodeClusterScanCursor} cursor stands for.
 * @throws InvalidListCursorError unless it is exactly what the encoder makes of a node address and
 * a SCAN cursor Redis could have returned.
 */
export function decodeClusterScanCursor(cursor: string): ClusterScanCursor {
  if (cursor.length === 0 || cursor.length > 400)
    throw new InvalidListCursorError('not a cursor of this store');
  const text = Buffer.from(cursor, 'base64url').toString('latin1');
  if (Buffer.from(text, 'latin1').toString('base64url') !== cursor)
    throw new InvalidListCursorError('not base64url');
  const match = CLUSTER_CURSOR.exec(text);
  if (!match || Number(match[2]) > 65535 || BigInt(match[3] as string) > MAX_SCAN_CURSOR)
    throw new InvalidListCursorError('not a cursor of this store');
  return { node: `${match[1]}:${match[2]}`, scan: match[3] as string };
}
