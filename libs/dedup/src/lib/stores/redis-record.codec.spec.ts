import fc from 'fast-check';
import { decodeRedisRecord, encodeRedisRecord, type RedisRecordFields } from './redis-record.codec';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redis-record.codec.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

const fields = fc.record<RedisRecordFields>({
  state: fc.constantFrom('IN_PROGRESS', 'COMPLETED'),
  token: fc.uuid(),
  fence: fc.nat(),
  attempts: fc.integer({ min: 1, max: 1000 }),
  createdAt: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  updatedAt: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  payloadHash: fc.option(fc.stringMatching(/^[0-9a-f]{1,64}$/), { nil: undefined }),
  // Any text: separators, colons, digits, astral characters.
  messageId: fc.option(fc.string({ unit: 'binary', minLength: 1 }), { nil: undefined }),
  result: fc.option(fc.string({ unit: 'binary', minLength: 1 }), { nil: undefined }),
});

describe('the Redis record format', () => {
  it('decodes what it encodes, whatever messageId and result hold', () => {
    fc.assert(
      fc.property(fields, (record) => {
        expect(decodeRedisRecord(encodeRedisRecord(record))).toEqual(record);
      }),
      { seed, numRuns: 500 },
    );
  });

  it('reads the length of messageId in UTF-8 bytes, as Lua writes it', () => {
    const raw = 'C|t-1|7|1|1000|2000|ab|8:mé|ssé|{"a":"|x"}';
    expect(decodeRedisRecord(raw)).toMatchObject({ messageId: 'mé|ssé', result: '{"a":"|x"}', fence: 7 });
  });

  it.each([
    ['another format', 'hello'],
    ['an unknown state', 'X|t|1|1|0|0||0:|'],
    ['a messageId longer than the record', 'I|t|1|1|0|0||9:ab|'],
    ['no separator after messageId', 'I|t|1|1|0|0||1:ab'],
  ])('refuses %s', (_, raw) => {
    expect(decodeRedisRecord(raw)).toBeUndefined();
  });
});
