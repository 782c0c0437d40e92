import { trustProxySchema } from './api.config';

describe('TRUST_PROXY', () => {
  it.each([
    [undefined, false],
    ['false', false],
    ['0', false],
    ['1', 1],
    ['2', 2],
    ['loopback', ['loopback']],
    ['10.0.0.0/8, 192.168.1.10 ,uniquelocal', ['10.0.0.0/8', '192.168.1.10', 'uniquelocal']],
    ['::1, fd00::/8', ['::1', 'fd00::/8']],
  ])('%s → %j', (value, expected) => {
    expect(trustProxySchema.parse(value)).toEqual(expected);
  });

  it.each([
    'true',
    'TRUE',
    '10.0.0.0/33',
    '::/129',
    '10.0.0.1/8/1',
    'proxy.internal',
    '1.2.3',
    '-1',
    '10.0.0.0/x',
    '',
  ])('refuses %j', (value) => {
    expect(trustProxySchema.safeParse(value).success).toBe(false);
  });
});
