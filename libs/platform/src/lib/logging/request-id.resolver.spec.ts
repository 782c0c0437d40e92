import type { IncomingMessage, ServerResponse } from 'node:http';
import { assignRequestId, isValidRequestId } from './request-id.resolver';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function exchange(header?: string) {
  const sent: Record<string, unknown> = {};
  const req = { headers: header === undefined ? {} : { 'x-request-id': header } } as IncomingMessage & {
    id?: unknown;
  };
  const res = { headersSent: false, setHeader: (name: string, value: unknown) => (sent[name] = value) };
  return { req, res: res as unknown as ServerResponse, sent };
}

describe('assignRequestId', () => {
  it.each(['a', 'trace-1.A:b_c', 'x'.repeat(128)])('keeps %s', (id) => {
    const { req, res, sent } = exchange(id);
    expect(assignRequestId(req, res)).toBe(id);
    expect(req.id).toBe(id);
    expect(sent).toEqual({ 'X-Request-Id': id });
  });

  it.each([undefined, '', 'x'.repeat(129), 'a b', 'a,b', '<x>', 'é', 'a\nb'])(
    'replaces %j by a UUID',
    (header) => {
      const { req, res, sent } = exchange(header);
      const id = assignRequestId(req, res);
      expect(id).toMatch(UUID);
      expect(sent['X-Request-Id']).toBe(id);
    },
  );

  it('decides once per request', () => {
    const { req, res } = exchange();
    expect(assignRequestId(req, res)).toBe(assignRequestId(req, res));
    expect(isValidRequestId(42)).toBe(false);
  });
});
