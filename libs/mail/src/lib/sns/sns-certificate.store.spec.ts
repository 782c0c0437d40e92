import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchText } from './sns-certificate.store';

describe('fetchText (the default SNS fetcher)', () => {
  let server: Server;
  let base: string;
  let bytesSent = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/small.pem') {
        res.writeHead(200, { 'content-length': '5' }).end('hello');
      } else if (path === '/declared-huge.pem') {
        res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
        res.write('x'.repeat(1024));
      } else if (path === '/chunked-huge.pem') {
        // No content-length: the reader has to stop counting by itself.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const pump = () => {
          while (!res.destroyed && bytesSent < 10 * 1024 * 1024) {
            bytesSent += 16 * 1024;
            if (!res.write('y'.repeat(16 * 1024))) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (path === '/redirect.pem') {
        res.writeHead(302, { location: '/small.pem' }).end();
      } else if (path === '/hang.pem') {
        res.writeHead(200);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const get = (path: string, maxBytes = 64 * 1024, signal = AbortSignal.timeout(2_000)) =>
    fetchText(new URL(path, base), { signal, maxBytes });

  it('returns small bodies', async () => {
    await expect(get('/small.pem')).resolves.toBe('hello');
  });

  it('refuses bodies over maxBytes, declared or streamed, without reading them whole', async () => {
    await expect(get('/declared-huge.pem')).rejects.toThrow(/more than 65536 bytes/);
    await expect(get('/chunked-huge.pem')).rejects.toThrow(/more than 65536 bytes/);
    expect(bytesSent).toBeLessThan(10 * 1024 * 1024);
  });

  it('refuses redirects and error statuses, and stops when the signal aborts', async () => {
    await expect(get('/redirect.pem')).rejects.toThrow();
    await expect(get('/missing.pem')).rejects.toThrow(/answered 404/);
    await expect(get('/hang.pem', 1024, AbortSignal.timeout(100))).rejects.toThrow();
  });
});
