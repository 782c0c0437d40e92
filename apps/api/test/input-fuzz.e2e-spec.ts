import { INestApplication } from '@nestjs/common';
import { AdminErrorReporter } from '@once/mail';
import { createTestQueue, readBody, testSqsClient } from '@once/testing';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { type AddressInfo } from 'node:net';
import { request as httpRequest } from 'node:http';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-input-fuzz-token-0123456789';
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
const RUNS_PER_OPERATION = Number(process.env['FUZZ_RUNS'] ?? 40);
/** Every controller of the api: a document listing fewer was not fetched or not built right. */
const MIN_OPERATIONS = 15;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  example?: unknown;
  schema?: { enum?: unknown[]; example?: unknown };
}

interface Operation {
  method: (typeof METHODS)[number];
  path: string;
  parameters: OpenApiParameter[];
  hasBody: boolean;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

interface Body {
  contentType?: string;
  text: string;
}

/** A percent-encoding of every code point, lone surrogates as their (invalid) 3-byte UTF-8 form. */
function looseEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (/^[A-Za-z0-9._~-]$/.test(char)) {
      out += char;
      continue;
    }
    const bytes =
      code < 0x80
        ? [code]
        : code < 0x800
          ? [0xc0 | (code >> 6), 0x80 | (code & 0x3f)]
          : code < 0x10000
            ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
            : [
                0xf0 | (code >> 18),
                0x80 | ((code >> 12) & 0x3f),
                0x80 | ((code >> 6) & 0x3f),
                0x80 | (code & 0x3f),
              ];
    out += bytes.map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

/** Raw (already URL-encoded) text an attacker could put in a path segment or a query value. */
const NASTY = [
  '%00',
  'a%00b',
  '%ED%A0%80',
  'x%ED%B0%80',
  '%E0%A4%A',
  '%',
  '%zz',
  '%C0%AF',
  '%FF',
  '%01',
  '%1F',
  '%7F',
  '%C2%85',
  '%0A',
  '%0D%0A',
  '%09',
  '%2F',
  '..',
  '%2E%2E',
  '__proto__',
  'constructor',
  '1e400',
  '-1e400',
  '99999999999999999999',
  '-1',
  '0',
  '1.5',
  'NaN',
  'Infinity',
  '0x10',
  '%20%205',
  'true',
  'null',
  '2026-02-30',
  '2026-13-01T00:00:00Z',
  '0000-01-01',
  '9999-12-31T23%3A59%3A59Z',
  '2026-11-22T07%3A00%3A00.000Z',
  'AAAA',
  '____',
  'A'.repeat(3000),
  looseEncode(Buffer.from(JSON.stringify(['not-a-date', 'k'])).toString('base64url')),
  Buffer.from(JSON.stringify(['2026-11-22 07:00:00.123+00', 'k\u0000'])).toString('base64url'),
  Buffer.from('\u0000', 'utf8').toString('base64url'),
  Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url'),
  'x'.repeat(6000),
  '%00'.repeat(500),
];

/** Characters stores and parsers trip on, to mix into random text. */
const nastyChar = fc.constantFrom(
  '\u0000',
  '\u0001',
  '\u0009',
  '\u000a',
  '\u001f',
  '\u007f',
  '\u0085',
  '\ud800',
  '\udfff',
  '\u2028',
  '\ufeff',
  '\uffff',
  '\u{1f600}',
  'é',
  '%',
  '/',
  '?',
  '#',
  '&',
  '=',
  '+',
  ' ',
  ':',
  '.',
  '\\',
  '"',
  '[',
  ']',
);

const rawText = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof(nastyChar, fc.string({ unit: 'binary', maxLength: 3 })), {
        minLength: 1,
        maxLength: 12,
      })
      .map((chars) => looseEncode(chars.join(''))),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).map(encodeURIComponent) },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.integer(), fc.double(), fc.bigInt()).map((n) => encodeURIComponent(String(n))),
  },
);

/** `name=...` pieces for one query parameter: absent, one value, repeated, or in bracket syntax. */
const queryPieces = (name: string, valid: string[]): fc.Arbitrary<string[]> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant<string[]>([]) },
    { weight: 3, arbitrary: fc.constantFrom(...valid).map((value) => [`${name}=${value}`]) },
    rawText.map((value) => [`${name}=${value}`]),
    fc.array(rawText, { minLength: 2, maxLength: 3 }).map((values) => values.map((v) => `${name}=${v}`)),
    fc
      .tuple(fc.constantFrom('[]', '[a]', '[__proto__]', '[0]', '[constructor][prototype]'), rawText)
      .map(([brackets, value]) => [
        `${name}${looseEncode(brackets)}=${value}`,
        `${name}${brackets}=${value}`,
      ]),
    fc.constant<string[]>([name]),
  );

/** Inputs a route should take: the enum's members, the documented example, or a name nothing has. */
function validValues(parameter: OpenApiParameter, run: string): string[] {
  const members = parameter.schema?.enum?.map(String) ?? [];
  if (members.length > 0) return members.map(encodeURIComponent);
  const example = parameter.example ?? parameter.schema?.example;
  // A path example names something that may exist: made absent, so no fuzzed action finds a target.
  if (example !== undefined)
    return [encodeURIComponent(parameter.in === 'path' ? `${String(example)}-${run}` : String(example))];
  return [`fuzz-${run}`];
}

const jsonBody = fc
  .oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.object({ maxDepth: 2 }),
    fc.record(
      {
        slot: fc.oneof(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 1 })),
        max: fc.oneof(fc.double(), fc.integer(), fc.string(), fc.constant(null), fc.array(fc.integer())),
        reason: fc.oneof(fc.string({ unit: 'binary', maxLength: 600 }), fc.jsonValue({ maxDepth: 1 })),
        force: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    ),
    fc.constantFrom<unknown>(
      { slot: '\u0000' },
      { reason: '\ud800' },
      { reason: 'a\u0000b' },
      { max: 1e308 },
      { max: -1 },
      { max: 0.5 },
      { max: '5' },
      { max: true },
      { max: [5] },
      JSON.parse('{"__proto__": {"max": 1}}'),
      JSON.parse('{"constructor": {"prototype": {"max": 1}}}'),
      { reason: 'x'.repeat(5000) },
      { unknownField: 1 },
    ),
  )
  .map((value): Body => ({ contentType: 'application/json', text: JSON.stringify(value) ?? 'null' }));

const body: fc.Arbitrary<Body | undefined> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 5, arbitrary: jsonBody },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-16',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/xml',
          'multipart/form-data; boundary=x',
          undefined,
        ),
        fc.oneof(
          fc.constantFrom(
            `${'['.repeat(5000)}${']'.repeat(5000)}`,
            `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`,
            '{"max":1,"max":2}',
            '{"__proto__":{"max":1}}',
            '{bad',
            '{"max": 1',
            'max=1',
            '<max>1</max>',
            '"str"',
            'null',
            '',
            '\u0000',
            '{"a":"\\ud800"}',
          ),
          fc.string({ unit: 'binary', maxLength: 50 }),
        ),
      )
      .map(([contentType, text]): Body => ({ contentType, text })),
  },
);

describe('api input fuzz: no input answers 5xx', () => {
  const run = randomUUID().slice(0, 8);
  const sqs = testSqsClient();
  let app: INestApplication;
  let port: number;
  let reports: jest.SpyInstance;
  const failures: string[] = [];

  function send(method: string, path: string, payload?: Body): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` };
      const data = payload === undefined ? undefined : Buffer.from(payload.text, 'utf8');
      if (payload?.contentType) headers['Content-Type'] = payload.contentType;
      if (data) headers['Content-Length'] = String(data.length);
      const options = { host: '127.0.0.1', port, method: method.toUpperCase(), path, headers, agent: false };
      const req = httpRequest(options, (res) => {
        readBody(res).then(
          (buffer) =>
            resolve({
              status: res.statusCode ?? 0,
              contentType: String(res.headers['content-type'] ?? ''),
              text: buffer.toString('utf8'),
            }),
          reject,
        );
      });
      req.on('error', reject);
      req.setTimeout(10_000, () =>
        req.destroy(new Error(`no answer within 10 s: ${method} ${path.slice(0, 100)}`)),
      );
      req.end(data);
    });
  }

  /** What is wrong with an answer, or undefined: never 5xx, and a 4xx in the consistent JSON body. */
  function problemWith(answer: Answer, path: string): string | undefined {
    if (answer.status >= 500) return `answered ${answer.status}: ${answer.text.slice(0, 300)}`;
    if (answer.status < 400) return undefined;
    // The click redirect answers refused links with its own HTML page (see DailyController).
    if (path.startsWith('/daily') && answer.contentType.startsWith('text/html')) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.text);
    } catch {
      return `answered ${answer.status} without a JSON body: ${answer.text.slice(0, 200)}`;
    }
    const error = parsed as { statusCode?: unknown; message?: unknown };
    if (error.statusCode !== answer.status || typeof error.message !== 'string')
      return `answered ${answer.status} with an inconsistent body: ${answer.text.slice(0, 300)}`;
    return undefined;
  }

  async function expectNoServerError(method: string, path: string, payload?: Body): Promise<Answer> {
    const answer = await send(method, path, payload);
    const problem = problemWith(answer, path);
    if (problem) {
      failures.push(
        `${method.toUpperCase()} ${path.slice(0, 200)} ${payload ? JSON.stringify(payload).slice(0, 200) : ''}: ${problem}`,
      );
    }
    expect(problem).toBeUndefined();
    return answer;
  }

  beforeAll(async () => {
    // Queues of this suite only: a fuzzed redrive or trigger moves nothing another suite counts on.
    await createTestQueue(sqs, `fuzz-jobs-${run}`);
    await createTestQueue(sqs, `fuzz-email-${run}`);
    app = await bootstrap({
      env: {
        PORT: '0',
        ADMIN_TOKENS: TOKEN,
        DATABASE_MIGRATE_ON_BOOT: 'true',
        REDIS_KEY_PREFIX: `${process.env['REDIS_KEY_PREFIX']}input-fuzz-${run}:`,
        ADMIN_RATE_LIMIT_PER_MINUTE: '100000',
        SQS_JOBS_QUEUE: `fuzz-jobs-${run}`,
        SQS_EMAIL_QUEUE: `fuzz-email-${run}`,
      },
    });
    port = (app.getHttpServer().address() as AddressInfo).port;
    reports = jest.spyOn(app.get(AdminErrorReporter), 'report');
    console.log(
      `input fuzz: seed ${SEED} (FUZZ_SEED=${SEED} to replay), ${RUNS_PER_OPERATION} runs per operation`,
    );
  });

  afterAll(async () => {
    if (failures.length > 0) console.log(`input fuzz failures (seed ${SEED}):\n${failures.join('\n')}`);
    await app?.close();
    sqs.destroy();
  });

  const fixed: Array<[method: string, path: string, payload?: Body]> = [
    ['get', '/admin/mail/%00'],
    ['get', '/admin/mail/a%00b/'],
    ['post', '/admin/mail/%00/resend', { contentType: 'application/json', text: '{}' }],
    ['get', '/admin/idempotency/%00/x'],
    ['get', '/admin/idempotency/jobs/%00'],
    ['delete', '/admin/idempotency/jobs/%00'],
    ['get', '/admin/idempotency?prefix=%00'],
    ['get', '/admin/idempotency?scope=%00'],
    ['get', '/admin/clicks/summary?campaign=%00'],
    ['get', '/admin/stats?campaign=%00'],
    ['get', '/admin/stats?campaign=%ED%A0%80'],
    ['get', '/admin/mail?recipient=a%00@example.com'],
    ['get', '/admin/idempotency?cursor=AAAA'],
    ['get', '/admin/idempotency?cursor=____'],
    ['get', `/admin/idempotency?cursor=${Buffer.from([0xff, 0xfe]).toString('base64url')}`],
    ['get', '/admin/mail?cursor=AAAA'],
    ['get', `/admin/mail?cursor=${Buffer.from(JSON.stringify(['not-a-date', 'k'])).toString('base64url')}`],
    [
      'get',
      `/admin/mail?cursor=${Buffer.from(JSON.stringify(['2026-02-30 07:00:00+00', 'k'])).toString('base64url')}`,
    ],
    [
      'get',
      `/admin/mail?cursor=${Buffer.from(JSON.stringify(['2026-11-22 07:00:00+00', 'k\u0000'])).toString('base64url')}`,
    ],
    ['get', `/admin/mail?cursor=${Buffer.from(JSON.stringify({ a: 1 })).toString('base64url')}`],
    ['get', '/admin/mail/%ED%A0%80'],
    ['get', '/admin/mail/%E0%A4%A'],
    ['get', '/admin/mail?limit=1e400'],
    ['get', '/admin/mail?limit=99999999999999999999'],
    ['get', '/admin/mail?limit=1&limit=2'],
    ['get', '/admin/mail?status[a]=b'],
    ['get', '/admin/idempotency?prefix[]=a'],
    ['get', '/admin/queues/jobs/dead-letters?limit=1e400'],
    ['get', '/admin/clicks/summary?from=2026-02-30'],
    ['get', '/admin/clicks/summary?from=2026-01-01&to=2025-01-01'],
    ['get', '/admin/clicks/summary?to=%ED%A0%80'],
    ['get', `/admin/mail/${'x'.repeat(8000)}`],
    ['get', `/admin/idempotency?prefix=${'x'.repeat(8000)}`],
    ['get', '/admin/mail?__proto__[limit]=1'],
    ['post', '/admin/jobs/daily-digest/trigger', { contentType: 'application/json', text: '{bad' }],
    ['post', '/admin/jobs/daily-digest/trigger', { contentType: 'text/plain', text: 'slot=x' }],
    ['post', '/admin/jobs/daily-digest/trigger', { contentType: 'application/json', text: '"str"' }],
    [
      'post',
      '/admin/jobs/daily-digest/trigger',
      { contentType: 'application/json', text: '{"__proto__":{"slot":"x"}}' },
    ],
    [
      'post',
      '/admin/jobs/daily-digest/trigger',
      { contentType: 'application/json', text: '{"slot":"\\u0000"}' },
    ],
    ['post', '/admin/mail/x/resend', { contentType: 'application/json', text: '{"reason":"\\ud800"}' }],
    ['post', '/admin/queues/jobs/redrive', { contentType: 'application/json', text: '{"max":1e400}' }],
    ['post', '/admin/queues/jobs/redrive', { contentType: 'application/json', text: 'x'.repeat(200_000) }],
    ['post', '/webhooks/ses', { contentType: 'text/plain', text: '{bad' }],
    ['post', '/webhooks/ses', { contentType: 'application/json', text: '{"Type":"\\u0000"}' }],
  ];

  it('answers each known attack input 4xx with the consistent body', async () => {
    const wrong: string[] = [];
    for (const [method, path, payload] of fixed) {
      const answer = await send(method, path, payload);
      const problem =
        problemWith(answer, path) ?? (answer.status < 400 ? `answered ${answer.status}` : undefined);
      if (problem) wrong.push(`${method.toUpperCase()} ${path.slice(0, 120)}: ${problem}`);
    }
    expect(wrong).toEqual([]);
  });

  it('refuses a body of the wrong content type on routes that act, instead of acting on defaults', async () => {
    for (const [path, text] of [
      ['/admin/queues/jobs/redrive', 'garbage'],
      ['/admin/mail/x/resend', 'reason=x'],
    ]) {
      const answer = await expectNoServerError('post', path, { contentType: 'text/plain', text });
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(JSON.parse(answer.text)).toMatchObject({ statusCode: 400, message: 'validation failed' });
    }
  });

  it('names the field of a NUL or a lone surrogate in a path, query or body string', async () => {
    const cases: Array<[method: string, path: string, field: string, payload?: Body]> = [
      ['get', '/admin/mail/a%00', 'key'],
      ['get', '/admin/clicks/summary?campaign=%00', 'campaign'],
      ['get', '/admin/stats?campaign=a%01', 'campaign'],
      ['get', '/admin/mail?cursor=AAAA', 'cursor'],
      ['get', '/admin/idempotency?cursor=AAAA', 'cursor'],
      [
        'post',
        '/admin/mail/x/resend',
        'reason',
        { contentType: 'application/json', text: '{"reason":"\\ud800"}' },
      ],
    ];
    for (const [method, path, field, payload] of cases) {
      const answer = await expectNoServerError(method, path, payload);
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(JSON.parse(answer.text)).toMatchObject({
        statusCode: 400,
        error: 'Bad Request',
        message: 'validation failed',
        details: expect.arrayContaining([expect.objectContaining({ field })]),
      });
    }
  });

  it('fuzzes every parameter and body of every operation in the OpenAPI document', async () => {
    const documentAnswer = await send('get', '/docs-json');
    expect(documentAnswer.status).toBe(200);
    const document = JSON.parse(documentAnswer.text) as {
      paths: Record<
        string,
        Partial<Record<(typeof METHODS)[number], { parameters?: OpenApiParameter[]; requestBody?: unknown }>>
      >;
    };
    const operations: Operation[] = Object.entries(document.paths).flatMap(([path, item]) =>
      METHODS.flatMap((method) => {
        const operation = item[method];
        return operation
          ? [
              {
                method,
                path,
                parameters: operation.parameters ?? [],
                hasBody: operation.requestBody !== undefined || method === 'post',
              },
            ]
          : [];
      }),
    );
    expect(operations.length).toBeGreaterThanOrEqual(MIN_OPERATIONS);
    // Every `{name}` in a path is a documented parameter, or the walk below would not fuzz it.
    for (const operation of operations) {
      const templated = [...operation.path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]).sort();
      const documented = operation.parameters
        .filter((p) => p.in === 'path')
        .map((p) => p.name)
        .sort();
      expect({ operation: `${operation.method} ${operation.path}`, path: documented }).toEqual({
        operation: `${operation.method} ${operation.path}`,
        path: templated,
      });
    }
    const documentedQuery = (method: string, path: string) =>
      operations
        .find((operation) => operation.method === method && operation.path === path)
        ?.parameters.filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort();
    expect(documentedQuery('get', '/admin/mail')).toEqual(['cursor', 'limit', 'recipient', 'status']);
    expect(documentedQuery('get', '/admin/queues/{queue}/dead-letters')).toEqual(['limit']);
    expect(documentedQuery('get', '/admin/clicks/summary')).toEqual(['campaign', 'from', 'to']);

    const statuses: Record<string, Record<number, number>> = {};
    for (const [index, operation] of operations.entries()) {
      const counts: Record<number, number> = (statuses[
        `${operation.method.toUpperCase()} ${operation.path}`
      ] = {});
      const pathParams = operation.parameters.filter((p) => p.in === 'path');
      const queryParams = operation.parameters.filter((p) => p.in === 'query');
      const input = fc.record({
        path: fc.tuple(
          ...pathParams.map((p) =>
            fc.oneof(
              { weight: 2, arbitrary: fc.constantFrom(...validValues(p, run)) },
              { weight: 3, arbitrary: rawText },
            ),
          ),
        ),
        query: fc.tuple(...queryParams.map((p) => queryPieces(p.name, validValues(p, run)))),
        // Parameters no route declares: ignored or refused, never a 5xx.
        extra: fc.oneof(
          { weight: 3, arbitrary: fc.constant<string[]>([]) },
          {
            weight: 1,
            arbitrary: fc.array(
              fc.tuple(rawText, rawText).map(([name, value]) => `${name}=${value}`),
              { minLength: 1, maxLength: 2 },
            ),
          },
        ),
        body: operation.hasBody ? body : fc.constant(undefined),
      });
      await fc.assert(
        fc.asyncProperty(input, async ({ path, query, extra, body: payload }) => {
          let index = 0;
          const target = operation.path.replace(/\{[^}]+\}/g, () => path[index++] ?? 'x');
          const pieces = [...query.flat(), ...extra];
          const url = pieces.length > 0 ? `${target}?${pieces.join('&')}` : target;
          const answer = await expectNoServerError(operation.method, url, payload);
          counts[answer.status] = (counts[answer.status] ?? 0) + 1;
        }),
        { seed: SEED + index, numRuns: RUNS_PER_OPERATION, verbose: 1, endOnFailure: true },
      );
    }
    console.log(`input fuzz: answers per operation (seed ${SEED}): ${JSON.stringify(statuses, null, 1)}`);
  }, 120_000);

  it('mailed the admins about none of it', async () => {
    await app.get(AdminErrorReporter).flush();
    expect(reports).not.toHaveBeenCalled();
  });
});
