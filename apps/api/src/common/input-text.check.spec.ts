import fc from 'fast-check';
import { inputProblems, MAX_BODY_DEPTH, rawQueryProblems, textProblem } from './input-text.check';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`input-text.check.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
const property = { seed, numRuns: 1000 };

// eslint-disable-next-line no-control-regex -- the oracle: what URL text must not hold
const urlOracle = (text: string) => /[\u0000-\u001f\u007f]/.test(text) || !isWellFormed(text);
const isWellFormed = (text: string) => !/\p{Cs}/u.test(text);

describe('textProblem', () => {
  it('names NUL, control characters and lone surrogates with their index', () => {
    expect(textProblem('ab\u0000', 'url')).toBe('contains NUL (U+0000) at index 2');
    expect(textProblem('a\u001f', 'url')).toBe('contains control character U+001F at index 1');
    expect(textProblem('\ud800x', 'body')).toBe('contains a lone surrogate U+D800 at index 0');
    expect(textProblem('x\udc00', 'url')).toContain('lone surrogate U+DC00');
    expect(textProblem('tab\there\r\n', 'body')).toBeUndefined();
    expect(textProblem('tab\there', 'url')).toContain('U+0009');
    expect(textProblem('emoji \u{1f600} é', 'url')).toBeUndefined();
  });

  it('refuses in URL text exactly the control characters and ill-formed UTF-16', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        expect(textProblem(text, 'url') !== undefined).toBe(urlOracle(text));
      }),
      property,
    );
  });
});

describe('inputProblems', () => {
  it('names the field of each bad string, key and reserved name, dotted', () => {
    const body = JSON.parse(
      '{"reason":"a\\u0000","list":["ok","\\ud800"],"nested":{"__proto__":1,"k\\u0001":2}}',
    );
    expect(inputProblems(body, '', 'body')).toEqual(
      expect.arrayContaining([
        { field: 'reason', message: 'contains NUL (U+0000) at index 1' },
        { field: 'list.1', message: 'contains a lone surrogate U+D800 at index 0' },
        { field: 'nested.__proto__', message: 'the name is a reserved name' },
        { field: 'nested.k\u0001', message: 'the name contains control character U+0001 at index 1' },
      ]),
    );
    expect(inputProblems('x\u0000', 'key', 'url')).toEqual([
      { field: 'key', message: 'contains NUL (U+0000) at index 1' },
    ]);
    expect(inputProblems({ a: 1, b: [true, null, 'fine'] }, '', 'body')).toEqual([]);
  });

  it('stops at nesting no route reads, without recursion', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(inputProblems(deep, '', 'body')).toEqual([
      {
        field: Array.from({ length: MAX_BODY_DEPTH }, () => '0').join('.'),
        message: `is nested deeper than ${MAX_BODY_DEPTH} levels`,
      },
    ]);
  });

  it('finds a problem in any JSON value exactly when one of its strings or keys has one', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const texts: string[] = [];
        const keys: string[] = [];
        const collect = (v: unknown): void => {
          if (typeof v === 'string') texts.push(v);
          else if (v && typeof v === 'object')
            for (const [key, child] of Object.entries(v)) {
              keys.push(key);
              collect(child);
            }
        };
        collect(value);
        // Reserved names are refused as keys only: "prototype" is a fine string value.
        const bad =
          [...texts, ...keys].some((text) => textProblem(text, 'body') !== undefined) ||
          keys.some((key) => ['__proto__', 'constructor', 'prototype'].includes(key));
        expect(inputProblems(value, '', 'body').length > 0).toBe(bad);
      }),
      property,
    );
  });
});

describe('rawQueryProblems', () => {
  it('refuses names and values that are not percent-encoded UTF-8, and nothing else', () => {
    expect(rawQueryProblems('')).toEqual([]);
    expect(rawQueryProblems('a=1&b=%C3%A9&c&d=+x+&e=%2B')).toEqual([]);
    expect(rawQueryProblems('campaign=%ED%A0%80')).toEqual([
      { field: 'campaign', message: 'is not valid percent-encoded UTF-8' },
    ]);
    expect(rawQueryProblems('x=%E0%A4%A&y=%')).toHaveLength(2);
    expect(rawQueryProblems('%FF=1')).toEqual([
      { field: '(query)', message: 'a parameter name is not valid percent-encoded UTF-8' },
    ]);
  });

  it('accepts every query an encoder makes of well-formed text', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), fc.string()), (params) => {
        fc.pre(Object.entries(params).every(([k, v]) => isWellFormed(k) && isWellFormed(v)));
        expect(rawQueryProblems(new URLSearchParams(params).toString())).toEqual([]);
      }),
      property,
    );
  });
});
