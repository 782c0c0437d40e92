import { errorFingerprint, normalizeErrorMessage } from './error.fingerprint';

function failAt(id: number): Error {
  return new Error(`user ${id} not found (request 3f2c1a9e-1b2c-4d5e-8f90-123456789abc)`);
}

describe('errorFingerprint', () => {
  it('is the same for one bug hit with different ids', () => {
    const [first, second] = [1, 2].map((id) => errorFingerprint(failAt(id), 'http GET /users/:id'));
    expect(first).toBe(second);
  });

  it('differs by scope, name and message', () => {
    const base = errorFingerprint(failAt(1), 'http GET /users/:id');
    expect(errorFingerprint(failAt(1), 'worker send-email')).not.toBe(base);
    expect(errorFingerprint(new TypeError('user 1 not found'), 'http GET /users/:id')).not.toBe(base);
    expect(errorFingerprint(new Error('other failure'), 'http GET /users/:id')).not.toBe(base);
  });

  it('handles non-Error throws', () => {
    expect(errorFingerprint('plain string', 'app')).toMatch(/^[0-9a-f]{16}$/);
    expect(errorFingerprint({ code: 42 }, 'app')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('normalizes volatile parts of messages', () => {
    expect(normalizeErrorMessage('row 42 with id "abc" hash deadbeefdeadbeef')).toBe(
      'row <n> with id <str> hash <hex>',
    );
  });
});
