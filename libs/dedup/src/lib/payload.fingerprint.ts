import { createHash } from 'node:crypto';

/**
 * The fingerprint kept with a record: SHA-256 of the payload (a string as is, anything else as its
 * JSON), base64url, 128 bits. `undefined` when there is no payload.
 */
export function payloadFingerprint(payload: unknown): string | undefined {
  if (payload === undefined) return undefined;
  let text: string | undefined;
  try {
    text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  } catch {
    return undefined;
  }
  return text === undefined ? undefined : createHash('sha256').update(text).digest('base64url').slice(0, 22);
}
