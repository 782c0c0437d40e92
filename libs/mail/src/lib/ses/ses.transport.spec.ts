import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { Logger } from '@nestjs/common';
import { classifySesError } from './ses-error.classifier';
import { createSesClient, SesDeadlineError, SesTransport, type TransportMail } from './ses.transport';
import type { ResolvedMailOptions } from '../mail.options';

const mail: TransportMail = {
  from: 'f@example.com',
  to: ['a@example.com'],
  subject: 'S',
  text: 'T',
  headers: [{ name: 'X-Once-Key', value: 'digest:1' }],
};

/** A client whose `send` never settles by itself and, like a custom handler might, ignores the signal. */
function stuckClient() {
  const signals: AbortSignal[] = [];
  let answer: (output: { MessageId: string }) => void = () => undefined;
  const client = {
    send: jest.fn((_command: unknown, options?: { abortSignal?: AbortSignal }) => {
      if (options?.abortSignal) signals.push(options.abortSignal);
      return new Promise((resolve) => (answer = resolve));
    }),
  };
  return { client, signals, answerLate: (id: string) => answer({ MessageId: id }) };
}

const options = (sesRequestTimeoutMs: number) =>
  ({ ses: { client: {} }, sesRequestTimeoutMs }) as unknown as ResolvedMailOptions;

describe('SesTransport deadline', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('aborts a call at its deadline and rejects with an ambiguous SesDeadlineError, even if the client ignores the signal', async () => {
    const { client, signals, answerLate } = stuckClient();
    const transport = new SesTransport(client as unknown as SESv2Client, options(60_000));
    const error = jest.spyOn(Logger.prototype, 'error');

    const started = Date.now();
    const late: string[] = [];
    const sending = transport.send(mail, 50, (messageId) => late.push(messageId));
    await expect(sending).rejects.toBeInstanceOf(SesDeadlineError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(client.send.mock.calls[0][0]).toBeInstanceOf(SendEmailCommand);
    expect(signals[0].aborted).toBe(true);
    expect(signals[0].reason).toBeInstanceOf(SesDeadlineError);
    expect(classifySesError(await sending.catch((e: unknown) => e))).toBe('ambiguous');

    // A late answer does not change the call's result; it is logged with the key and handed over.
    expect(late).toEqual([]);
    answerLate('late-1');
    await new Promise((resolve) => setImmediate(resolve));
    expect(late).toEqual(['late-1']);
    expect(error).toHaveBeenCalledWith(
      expect.objectContaining({ idempotencyKey: 'digest:1', messageId: 'late-1' }),
    );
    error.mockRestore();
  });

  it('uses the configured SES request timeout by default and never calls SES with no time left', async () => {
    const { client, signals } = stuckClient();
    const transport = new SesTransport(client as unknown as SESv2Client, options(30));
    await expect(transport.send(mail)).rejects.toThrow(/30 ms deadline/);
    expect(signals[0].aborted).toBe(true);
    await expect(transport.send(mail, 0)).rejects.toBeInstanceOf(SesDeadlineError);
    expect(client.send).toHaveBeenCalledTimes(1);
  });

  it('clears the deadline when SES answers in time', async () => {
    const client = { send: jest.fn(async () => ({ MessageId: 'ses-1' })) };
    const transport = new SesTransport(client as unknown as SESv2Client, options(60_000));
    await expect(transport.send(mail)).resolves.toBe('ses-1');
    const [, sendOptions] = client.send.mock.calls[0] as unknown as [unknown, { abortSignal: AbortSignal }];
    expect(sendOptions.abortSignal.aborted).toBe(false);
  });

  it('builds its own client with one attempt and a request timeout that throws', async () => {
    const client = createSesClient({
      ses: { region: 'us-east-1' },
      sesRequestTimeoutMs: 1_234,
    } as unknown as ResolvedMailOptions);
    expect(await client.config.maxAttempts()).toBe(1);
    const handler = client.config.requestHandler as unknown as {
      configProvider: Promise<{ requestTimeout?: number; throwOnRequestTimeout?: boolean }>;
    };
    await expect(handler.configProvider).resolves.toMatchObject({
      requestTimeout: 1_234,
      throwOnRequestTimeout: true,
    });
    client.destroy();
  });
});
