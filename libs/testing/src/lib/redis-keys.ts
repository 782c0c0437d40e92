import type { Redis } from 'ioredis';

/** Every key matching `pattern` on one Redis node (SCAN, so a busy shared Redis is not blocked). */
export async function scanKeys(node: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}
