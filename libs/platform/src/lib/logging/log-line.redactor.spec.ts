import fc from 'fast-check';
import pino from 'pino';
import { Writable } from 'node:stream';
import { LogLineRedactor } from './log-line.redactor';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`log-line.redactor.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

const CONFIGURED = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SECRETS = ['longpassword', 'abcdef123456', CONFIGURED];

function capture(options = { secrets: [CONFIGURED] }) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const logger = pino({ ...new LogLineRedactor(options).pinoOptions() }, stream);
  return { logger, lines };
}

const failure = () => {
  const error = new Error(
    `connect postgres://u:longpassword@db failed; Authorization: Bearer abcdef123456; key ${CONFIGURED}`,
  );
  (error as Error & { cause?: unknown }).cause = new Error(`retry with ${CONFIGURED}`);
  return error;
};

describe('LogLineRedactor in pino', () => {
  it.each<[string, (logger: pino.Logger) => void]>([
    ['an error under err', (logger) => logger.error({ err: failure() }, 'job failed')],
    ['an error as the first argument', (logger) => logger.error(failure())],
    ['an error under err without a message', (logger) => logger.error({ err: failure() })],
    ['a msg field', (logger) => logger.error({ msg: failure().message })],
    ['err: error.message', (logger) => logger.error({ err: failure().message })],
    [
      'err: String(error) (the scheduler)',
      (logger) => logger.error({ msg: 'dedup purge failed', err: String(failure()) }),
    ],
    ['error: String(error)', (logger) => logger.warn({ error: String(failure()) }, 'retrying')],
    [
      'reason, detail and message fields',
      (logger) =>
        logger.error({
          reason: failure().message,
          detail: { text: failure().message },
          message: failure().stack,
        }),
    ],
    ['an error under error', (logger) => logger.error({ error: failure() })],
    ['the message', (logger) => logger.error(`Job failed: ${failure().message}`)],
    ['an interpolated argument', (logger) => logger.error('Job failed: %s', failure().message)],
    [
      'a child logger',
      (logger) => logger.child({ context: 'Cron' }).error({ err: failure() }, failure().message),
    ],
  ])('hides the secrets of %s', (_name, log) => {
    const { logger, lines } = capture();
    log(logger);
    expect(lines).toHaveLength(1);
    for (const secret of SECRETS) expect(lines[0]).not.toContain(secret);
    expect(lines[0]).toContain('postgres://');
  });

  it('keeps the stack frames and the rest of the line', () => {
    const { logger, lines } = capture();
    logger.error({ err: failure(), queue: 'digest', attempt: 3 }, 'job %s failed', 'dedup-purge');
    const line = JSON.parse(lines[0]);
    expect(line).toMatchObject({ queue: 'digest', attempt: 3, msg: 'job dedup-purge failed' });
    expect(line.err.type).toBe('Error');
    expect(line.err.stack).toContain('log-line.redactor.spec');
    expect(line.err.message).toContain('[REDACTED]');
  });

  it('leaves ordinary lines as they are', () => {
    const { logger, lines } = capture();
    const fields = { queue: 'digest', messageId: '6f1c2a3e-8f4b-4c1d-9a7e-2b3c4d5e6f70', ms: 12 };
    logger.info(fields, 'Consumer digest started, 3 messages in 12 ms');
    expect(JSON.parse(lines[0])).toMatchObject({
      ...fields,
      msg: 'Consumer digest started, 3 messages in 12 ms',
    });
  });

  it('hides configured secrets, raw or encoded, in request URLs and headers', () => {
    const redactor = new LogLineRedactor({ secrets: [CONFIGURED, 'short'] });
    expect(
      redactor.hideInHttp({
        url: `/x?q=${encodeURIComponent(CONFIGURED)}&page=short`,
        headers: { 'x-note': CONFIGURED, accept: ['a', `b${CONFIGURED}`] },
      }),
    ).toEqual({
      url: '/x?q=[redacted]&page=short',
      headers: { 'x-note': '[redacted]', accept: ['a', 'b[redacted]'] },
    });
  });

  it('hides a configured secret in URLs and headers in every encoding admin mail hides', () => {
    const secret = 'Sup3r/S3cret!value';
    const redactor = new LogLineRedactor({ secrets: [secret] });
    const forms = [
      secret,
      'Sup3r%2fS3cret!value',
      'Sup3r/S3cr%65t%21value',
      'Sup3r%252FS3cret!value',
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('hex'),
    ];
    for (const form of forms) {
      const out = redactor.hideInHttp({
        url: `/x?q=${form}&page=2`,
        headers: { referer: `https://a/?q=${form}`, 'x-forwarded-host': form },
      });
      const text = JSON.stringify(out);
      expect({ form, leaked: text.includes(form) || text.includes(secret) }).toEqual({ form, leaked: false });
      // Forms that only show decoded (over-encoded) cost the whole value; the others only the secret.
      expect(out.url === '[redacted]' || out.url?.startsWith('/x?q=[redacted]&page=2')).toBe(true);
    }
  });

  it('cuts a huge error message', () => {
    const { logger, lines } = capture();
    logger.error({ err: 'x'.repeat(100_000) });
    expect(lines[0].length).toBeLessThan(10_000);
  });

  it('never lets a configured secret or a credential through any error field or the message', () => {
    const field = fc.constantFrom('err', 'error', 'reason', 'detail', 'message', 'msg');
    const text = fc.string({ maxLength: 20 });
    const secret = fc.constantFrom(
      CONFIGURED,
      encodeURIComponent(CONFIGURED),
      'postgres://u:longpassword@h',
      'Bearer abcdef123456',
      'password=longpassword',
    );
    fc.assert(
      fc.property(field, text, secret, text, (key, before, value, after) => {
        const { logger, lines } = capture();
        const payload = `${before}${before ? ' ' : ''}${value} ${after}`;
        if (key === 'msg') logger.error(payload);
        else logger.error({ [key]: payload });
        for (const one of [...SECRETS, encodeURIComponent(CONFIGURED)]) expect(lines[0]).not.toContain(one);
      }),
      { seed, numRuns: 300 },
    );
  });
});
