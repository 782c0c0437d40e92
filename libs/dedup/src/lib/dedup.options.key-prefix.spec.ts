import Redis from 'ioredis';
import { DedupConfigError } from './dedup.errors';
import { resolveDedupOptions } from './dedup.options';

describe('resolveDedupOptions: keyPrefix', () => {
  const redis = new Redis({ lazyConnect: true });

  afterAll(() => redis.disconnect());

  const issuesOf = (keyPrefix: string): readonly string[] => {
    try {
      resolveDedupOptions({ store: 'redis', redis, keyPrefix });
    } catch (error) {
      expect(error).toBeInstanceOf(DedupConfigError);
      return (error as DedupConfigError).issues;
    }
    return [];
  };

  it('accepts up to 200 UTF-8 bytes, and an empty prefix', () => {
    expect(issuesOf('p'.repeat(200))).toEqual([]);
    expect(issuesOf('é'.repeat(100))).toEqual([]);
    expect(issuesOf('')).toEqual([]);
  });

  it('bounds the prefix in bytes, not characters (it shares the Postgres index entry with scope and key)', () => {
    expect(issuesOf('é'.repeat(101))).toEqual(['keyPrefix: the keyPrefix is 202 bytes; at most 200 (UTF-8)']);
  });

  it('refuses control characters and lone surrogates', () => {
    expect(issuesOf('once\u0000')).toEqual(['keyPrefix: the keyPrefix contains NUL (U+0000) at index 4']);
    expect(issuesOf('once\n')).toEqual([
      'keyPrefix: the keyPrefix contains control character U+000A at index 4',
    ]);
    expect(issuesOf('\udc00:')).toEqual([expect.stringContaining('lone surrogate U+DC00 at index 0')]);
  });
});
