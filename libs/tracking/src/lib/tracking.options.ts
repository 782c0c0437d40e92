import type { Redis } from 'ioredis';
import { z } from 'zod';

/** Injection token of the validated {@link ResolvedTrackingOptions}. */
export const TRACKING_OPTIONS = Symbol('TRACKING_OPTIONS');

/** The utm_* parameters the redirect can add, in the order they are appended. */
export const UTM_KEYS = ['source', 'medium', 'campaign', 'content', 'term', 'id'] as const;
export type UtmKey = (typeof UTM_KEYS)[number];
export type UtmValues = Partial<Record<UtmKey, string>>;

/** Longest target (decoded) a link may carry. */
export const MAX_TARGET_LENGTH = 2048;
/** Longest campaign, content, term, recipient id or message key. */
export const MAX_PARAM_LENGTH = 200;
/** Shortest accepted HMAC secret, in characters. */
export const MIN_SECRET_LENGTH = 32;

const utmValue = z.string().min(1).max(MAX_PARAM_LENGTH);

const siteUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .refine(
    (value) => {
      if (!URL.canParse(value)) return true; // already reported by z.url()
      const url = new URL(value);
      return url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
    },
    {
      message: 'must be an origin only, such as https://site.example (no path, query, fragment or userinfo)',
    },
  )
  .transform((value) => new URL(value).origin);

const pathPrefix = z
  .string()
  .regex(/^\/[^?#\s\\]*$/, 'must be a path starting with "/" (no query, fragment, whitespace or backslash)');

/** The parts of the options that are safe to publish (the static page embeds them). */
export const publicTrackingOptionsSchema = z.strictObject({
  /** The site's origin: every redirect stays on it. */
  baseUrl: siteUrl,
  /** Path of the redirect endpoint on the site. */
  trackingPath: pathPrefix.refine((path) => path.endsWith('/'), 'must end with "/"').default('/daily/'),
  /** utm_* values added to every redirect; a link's campaign/content/term override them. */
  defaultUtm: z
    .strictObject(
      Object.fromEntries(UTM_KEYS.map((key) => [key, utmValue.optional()])) as Record<
        UtmKey,
        z.ZodOptional<typeof utmValue>
      >,
    )
    .default({ source: 'email', medium: 'email' }),
  /** When set, a target's normalised pathname must start with one of the strings or match one of the patterns. */
  pathAllowlist: z
    .array(z.union([pathPrefix, z.instanceof(RegExp)]))
    .min(1)
    .optional(),
  /** What an invalid link gets: a 400 HTML page, or a 302 to the site root. */
  invalidLinkBehaviour: z.enum(['error-page', 'redirect-root']).default('error-page'),
});

export const trackingOptionsSchema = publicTrackingOptionsSchema.extend({
  /** HMAC secrets: the first signs new links, all of them verify (rotation). */
  secrets: z
    .array(z.string().min(MIN_SECRET_LENGTH, `each secret needs at least ${MIN_SECRET_LENGTH} characters`))
    .min(1, 'at least one secret is required'),
  /** Buffered click writer tuning. */
  clickRecorder: z
    .strictObject({
      /** Rows per INSERT; reaching it also triggers a flush. */
      batchSize: z.number().int().min(1).max(5000).default(200),
      /** Flush interval: a SIGKILL loses at most the clicks of one interval (and of a write in flight). */
      flushIntervalMs: z.number().int().min(10).max(60_000).default(100),
      /** Clicks kept in memory while Postgres is unavailable; the oldest are dropped beyond it. */
      maxBuffered: z.number().int().min(1).max(1_000_000).default(10_000),
    })
    .prefault({}),
  /**
   * A Redis stream that takes the clicks Postgres cannot (see ClickRecorder): they survive an
   * outage and are moved into Postgres when it is back. Without it they wait in memory.
   */
  clickSpill: z
    .strictObject({
      redis: z.custom<Redis>(
        (value) => typeof value === 'object' && value !== null && typeof (value as Redis).xadd === 'function',
        'must be an ioredis client',
      ),
      streamKey: z.string().min(1),
      /** Clicks the stream keeps at most (about 300 bytes each); beyond it the oldest are trimmed. */
      maxLength: z.number().int().min(1000).max(100_000_000).default(1_000_000),
    })
    .optional(),
  /** How refused links are logged (see RefusedLinkLog). */
  refusedLinks: z
    .strictObject({
      /** One refusal is logged in full per interval; the others of the interval in one summary line at its end. */
      logIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
    })
    .prefault({}),
});

/** Options as an app passes them to `TrackingModule.forRoot` or `new LinkBuilder()`. */
export type TrackingOptions = z.input<typeof trackingOptionsSchema>;
/** Options after validation and defaults. */
export type ResolvedTrackingOptions = z.output<typeof trackingOptionsSchema>;
export type PublicTrackingOptions = z.input<typeof publicTrackingOptionsSchema>;
export type ResolvedPublicTrackingOptions = z.output<typeof publicTrackingOptionsSchema>;
export type InvalidLinkBehaviour = ResolvedTrackingOptions['invalidLinkBehaviour'];

/** Extra options of `TrackingModule.forRoot`/`forRootAsync`, beside the {@link TrackingOptions}. */
export interface TrackingModuleExtras {
  /**
   * Also provide ClickRecorder and ClickSummaryService. Needs the app's TypeORM connection
   * (`TypeOrmModule.forRoot`) with TRACKING_ENTITIES and TRACKING_MIGRATIONS registered. Default false:
   * building links needs no database.
   */
  recordClicks?: boolean;
  /** Register the module globally. Default false. */
  isGlobal?: boolean;
}

/** A class that `TrackingModule.forRootAsync({ useClass })` / `({ useExisting })` asks for the options. */
export interface TrackingOptionsFactory {
  createTrackingOptions(): TrackingOptions | Promise<TrackingOptions>;
}

/** Thrown when tracking options are invalid; the message names each bad field and never echoes a value. */
export class TrackingOptionsError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(`Invalid tracking options:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'TrackingOptionsError';
  }
}

function parseWith<S extends z.ZodType>(schema: S, options: unknown): z.output<S> {
  const result = schema.safeParse(options);
  if (!result.success) {
    throw new TrackingOptionsError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}

/** Validates tracking options and fills in defaults. Idempotent. */
export function parseTrackingOptions(options: TrackingOptions): ResolvedTrackingOptions {
  return parseWith(trackingOptionsSchema, options);
}

/** Validates the secret-free part of the options (static page). */
export function parsePublicTrackingOptions(options: PublicTrackingOptions): ResolvedPublicTrackingOptions {
  return parseWith(publicTrackingOptionsSchema, options);
}
