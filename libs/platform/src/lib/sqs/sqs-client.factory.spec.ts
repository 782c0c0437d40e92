import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { waitFor } from '@once/testing';
import {
  createSqsClient,
  DEFAULT_SQS_DEADLINES,
  SQS_MAX_WAIT_SECONDS,
  sqsCallDeadlineMs,
  SqsDeadlineError,
} from './sqs-client.factory';

const QUEUE_URL = 'http://127.0.0.1/000000000000/once-jobs';

/** Accepts connections and never answers: a hung SQS endpoint. */
async function silentServer(): Promise<{ endpoint: string; sockets: Socket[]; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    // Reads (and drops) the request so the client's close is seen.
    socket.resume();
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers every request with an empty ReceiveMessage result after `delayMs`: a long poll. */
async function longPollServer(delayMs: number): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server: HttpServer = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const aws = (endpoint: string) => ({
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  SQS_ENDPOINT: endpoint,
});

describe('createSqsClient deadlines', () => {
  it('gives a long poll its wait plus a margin, and every other call the request deadline', () => {
    const receive = (WaitTimeSeconds?: number) =>
      sqsCallDeadlineMs(new ReceiveMessageCommand({ QueueUrl: QUEUE_URL, WaitTimeSeconds }));
    expect(receive(20)).toBe(20_000 + DEFAULT_SQS_DEADLINES.receiveMarginMs);
    // Unset: the queue's ReceiveMessageWaitTimeSeconds applies, which can be the maximum.
    expect(receive(undefined)).toBe(SQS_MAX_WAIT_SECONDS * 1_000 + DEFAULT_SQS_DEADLINES.receiveMarginMs);
    expect(receive(0)).toBe(DEFAULT_SQS_DEADLINES.receiveMarginMs);
    expect(sqsCallDeadlineMs(new SendMessageCommand({ QueueUrl: QUEUE_URL, MessageBody: 'x' }))).toBe(
      DEFAULT_SQS_DEADLINES.requestMs,
    );
  });

  it('fails a SendMessage to a hung endpoint within its deadline and closes the connection', async () => {
    const server = await silentServer();
    const sqs = createSqsClient(aws(server.endpoint), { requestMs: 300 });
    try {
      const started = Date.now();
      const error = await sqs
        .send(new SendMessageCommand({ QueueUrl: QUEUE_URL, MessageBody: 'hello' }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SqsDeadlineError);
      expect(error).toMatchObject({ operation: 'SendMessage', deadlineMs: 300 });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(server.sockets.length).toBeGreaterThan(0);
      await waitFor('the aborted connection to close', () =>
        server.sockets.every((socket) => socket.destroyed || socket.readableEnded) ? true : undefined,
      );
    } finally {
      sqs.destroy();
      await server.close();
    }
  });

  it('lets a long poll run its full wait, and cuts it only after wait + margin', async () => {
    const poll = await longPollServer(1_000);
    const silent = await silentServer();
    const deadlines = { requestMs: 200, receiveMarginMs: 500 };
    const answering = createSqsClient(aws(poll.endpoint), deadlines);
    const hung = createSqsClient(aws(silent.endpoint), deadlines);
    try {
      // A 1 s wait outlives requestMs (200 ms) but not 1 s + 500 ms.
      await expect(
        answering.send(new ReceiveMessageCommand({ QueueUrl: QUEUE_URL, WaitTimeSeconds: 1 })),
      ).resolves.toBeDefined();
      const started = Date.now();
      await expect(
        hung.send(new ReceiveMessageCommand({ QueueUrl: QUEUE_URL, WaitTimeSeconds: 1 })),
      ).rejects.toMatchObject({ name: 'TimeoutError', operation: 'ReceiveMessage', deadlineMs: 1_500 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    } finally {
      answering.destroy();
      hung.destroy();
      await poll.close();
      await silent.close();
    }
  });

  it("still honours the caller's abortSignal (sqs-consumer's stop) and leaves no listener on it", async () => {
    const server = await silentServer();
    const sqs = createSqsClient(aws(server.endpoint), { requestMs: 30_000 });
    const caller = new AbortController();
    const added = jest.spyOn(caller.signal, 'addEventListener');
    const removed = jest.spyOn(caller.signal, 'removeEventListener');
    try {
      const sending = sqs.send(new SendMessageCommand({ QueueUrl: QUEUE_URL, MessageBody: 'x' }), {
        abortSignal: caller.signal,
      });
      await waitFor('the request to reach the server', () => (server.sockets.length > 0 ? true : undefined));
      caller.abort();
      await expect(sending).rejects.toMatchObject({ name: 'AbortError' });
      expect(added).toHaveBeenCalledTimes(1);
      expect(removed).toHaveBeenCalledWith('abort', added.mock.calls[0][1]);
    } finally {
      sqs.destroy();
      await server.close();
    }
  });

  it('builds a handler whose own request timeout throws and covers the longest long poll', async () => {
    const sqs = createSqsClient(aws('http://127.0.0.1:1'));
    const handler = sqs.config.requestHandler as unknown as {
      configProvider: Promise<{ requestTimeout?: number; throwOnRequestTimeout?: boolean }>;
    };
    const config = await handler.configProvider;
    expect(config.throwOnRequestTimeout).toBe(true);
    expect(config.requestTimeout).toBeGreaterThan(SQS_MAX_WAIT_SECONDS * 1_000);
    sqs.destroy();
  });
});
