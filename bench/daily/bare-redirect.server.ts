// The baseline of bench/daily: a bare Express 5 app answering the same 302 (same headers, same
// Location) as the api's /daily/ for a valid link, with nothing else: no verification, no logging,
// no click recording. Prints its port once listening.
import express from 'express';

const location = process.env.BARE_LOCATION ?? 'https://site.example/';
const app = express();
app.disable('x-powered-by');
app.get('/daily/', (_req, res) => {
  res.set({
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Robots-Tag': 'noindex, nofollow',
    Location: location,
  });
  res.status(302).end();
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
