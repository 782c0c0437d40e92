import { X509Certificate } from 'node:crypto';
import { LruCache } from './lru.cache';
import { SnsVerificationError } from './sns-verification.error';

/** What {@link SnsHttpGet} must honour: abort when `signal` fires, read at most `maxBytes`. */
export interface SnsHttpGetOptions {
  signal: AbortSignal;
  maxBytes: number;
}

/**
 * GETs a URL and resolves its body; rejects with {@link SnsHttpStatusError} on a non-2xx answer
 * (any other error counts as transient: timeouts, connection failures).
 */
export type SnsHttpGet = (url: URL, options: SnsHttpGetOptions) => Promise<string>;

/** A non-2xx answer. 4xx other than 408/429 is definitive (no such certificate); the rest may pass. */
export class SnsHttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`answered ${status}`);
    this.name = 'SnsHttpStatusError';
  }

  get definitive(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

/** The URL answered something that is not a certificate of acceptable size. */
class NotACertificateError extends Error {}

/** Limits on downloading signing certificates, which any unauthenticated post can ask for. */
export interface SnsCertificateOptions {
  /** Downloads in flight at once (one per URL); a message needing another one is refused as `certificate-busy`. Default 4. */
  maxInFlight?: number;
  /** Certificates kept, least recently used evicted first. Default 100. */
  cacheSize?: number;
  /** How long a downloaded certificate is reused. Default 24 h (its validity dates are checked on every use). */
  cacheTtlMs?: number;
  /** How long a URL whose download failed for good (4xx, not a certificate, too big) is refused without downloading it again. Default 5 min. */
  failureTtlMs?: number;
  /** The same after a transient failure (timeout, connection, 5xx), answered as retryable. Default 10 s (SNS retries 20 s apart by default). */
  transientFailureTtlMs?: number;
  /** Failed URLs remembered. Default 1,000. */
  failureCacheSize?: number;
  /** Per download (and per SubscribeURL confirmation). Default 5 s. */
  timeoutMs?: number;
  /** Largest body accepted. Default 64 KiB (a certificate is a few KB). */
  maxBytes?: number;
}

export const DEFAULT_SNS_CERTIFICATE_OPTIONS: Readonly<Required<SnsCertificateOptions>> = {
  maxInFlight: 4,
  cacheSize: 100,
  cacheTtlMs: 24 * 3600_000,
  failureTtlMs: 5 * 60_000,
  transientFailureTtlMs: 10_000,
  failureCacheSize: 1_000,
  timeoutMs: 5_000,
  maxBytes: 64 * 1024,
};

/** The default {@link SnsHttpGet}: `fetch` without redirects, reading the body up to `maxBytes`. */
export async function fetchText(url: URL, { signal, maxBytes }: SnsHttpGetOptions): Promise<string> {
  const response = await fetch(url, { redirect: 'error', signal });
  if (!response.ok) {
    await response.body?.cancel();
    throw new SnsHttpStatusError(response.status);
  }
  if (Number(response.headers.get('content-length')) > maxBytes) {
    await response.body?.cancel();
    throw new NotACertificateError(`answered more than ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
    size += read.value.byteLength;
    if (size > maxBytes) {
      await reader?.cancel();
      throw new NotACertificateError(`answered more than ${maxBytes} bytes`);
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Runs `httpGet` with a deadline (aborting its signal when it passes) and checks the body size
 * even when the fetcher does not.
 */
export async function boundedGet(
  httpGet: SnsHttpGet,
  url: URL,
  limits: { timeoutMs: number; maxBytes: number },
): Promise<string> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no answer within ${limits.timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, limits.timeoutMs);
  });
  try {
    const body = await Promise.race([
      httpGet(url, { signal: controller.signal, maxBytes: limits.maxBytes }),
      deadline,
    ]);
    if (Buffer.byteLength(body, 'utf8') > limits.maxBytes)
      throw new NotACertificateError(`answered more than ${limits.maxBytes} bytes`);
    return body;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Signing certificates by URL, downloaded under bounds so forged posts naming new URLs cannot
 * make unbounded outbound requests: one download per URL at a time (concurrent messages share
 * it), at most `maxInFlight` downloads, each with a deadline and a size limit; successes in an
 * LRU cache, failures remembered for `failureTtlMs` (`transientFailureTtlMs` for failures that
 * may pass, which are answered as retryable).
 */
export class SnsCertificateStore {
  private readonly limits: Readonly<Required<SnsCertificateOptions>>;
  private readonly certificates: LruCache<string, X509Certificate>;
  private readonly failures: LruCache<string, SnsVerificationError>;
  private readonly downloads = new Map<string, Promise<X509Certificate>>();

  constructor(
    private readonly httpGet: SnsHttpGet,
    options: SnsCertificateOptions = {},
    now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_SNS_CERTIFICATE_OPTIONS, ...options };
    this.certificates = new LruCache(this.limits.cacheSize, this.limits.cacheTtlMs, now);
    this.failures = new LruCache(this.limits.failureCacheSize, this.limits.failureTtlMs, now);
  }

  /** The certificate at `url` (already checked to be an SNS certificate URL); throws {@link SnsVerificationError}. */
  get(url: URL): Promise<X509Certificate> {
    // One entry per certificate file, whatever else the URL carries.
    const key = `${url.origin}${url.pathname}`;
    const cached = this.certificates.get(key);
    if (cached) return Promise.resolve(cached);
    const failure = this.failures.get(key);
    if (failure) return Promise.reject(failure);
    const shared = this.downloads.get(key);
    if (shared) return shared;
    if (this.downloads.size >= this.limits.maxInFlight) {
      return Promise.reject(
        new SnsVerificationError(
          'certificate-busy',
          `${this.downloads.size} certificate downloads in flight, ${url.hostname}${url.pathname} not started`,
        ),
      );
    }
    const download = boundedGet(this.httpGet, url, this.limits)
      .then((pem) => {
        try {
          return new X509Certificate(pem);
        } catch (error) {
          throw new NotACertificateError((error as Error).message);
        }
      })
      .then(
        (certificate) => {
          this.certificates.set(key, certificate);
          return certificate;
        },
        (error: unknown) => {
          const definitive =
            error instanceof NotACertificateError ||
            (error instanceof SnsHttpStatusError && error.definitive);
          const message = error instanceof Error ? error.message : String(error);
          const failure = new SnsVerificationError(
            definitive ? 'certificate' : 'certificate-unavailable',
            `cannot load ${url.hostname}${url.pathname}: ${message}`,
          );
          this.failures.set(
            key,
            failure,
            definitive ? this.limits.failureTtlMs : this.limits.transientFailureTtlMs,
          );
          throw failure;
        },
      )
      .finally(() => this.downloads.delete(key));
    this.downloads.set(key, download);
    return download;
  }
}
