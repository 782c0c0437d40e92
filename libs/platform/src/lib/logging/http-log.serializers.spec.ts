import { redactLogHeaders, serializeLogRequest, serializeLogResponse } from './http-log.serializers';

describe('HTTP log serializers', () => {
  it('hide secret headers, redact URL-valued ones and keep the rest', () => {
    expect(
      redactLogHeaders({
        authorization: 'Bearer abc',
        'proxy-authorization': 'Basic abc',
        cookie: 'sid=1',
        'x-api-key': 'k',
        'x-amz-security-token': 't',
        referer: 'https://a.example/p?token=T&page=2',
        'user-agent': 'curl/8',
      }),
    ).toEqual({
      authorization: '[redacted]',
      'proxy-authorization': '[redacted]',
      cookie: '[redacted]',
      'x-api-key': '[redacted]',
      'x-amz-security-token': '[redacted]',
      referer: 'https://a.example/p?token=[redacted]&page=2',
      'user-agent': 'curl/8',
    });
  });

  it('redact every URL-valued header, also nested and encoded targets', () => {
    expect(
      redactLogHeaders({
        'x-original-uri': '/daily/?/reset%3Ftoken%3Dabc123&c=Daily',
        'x-envoy-original-path': '/p?access_token=abc123',
        'x-rewrite-url': '/p?next=https%3A%2F%2Fx%2F%3Faccess_token%3Dabc123',
        'X-Original-URL': '/p?q=Bearer%20abc123def456',
        link: '<https://a.example/p?token=abc123&page=2>; rel="next", <https://a.example/p?page=1>; rel="prev"',
      }),
    ).toEqual({
      'x-original-uri': '/daily/?/reset%3Ftoken%3D[redacted]&c=Daily',
      'x-envoy-original-path': '/p?access_token=[redacted]',
      'x-rewrite-url': '/p?next=https%3A%2F%2Fx%2F%3Faccess_token%3D[redacted]',
      'X-Original-URL': '/p?q=[redacted]',
      link: '<https://a.example/p?token=[redacted]&page=2>; rel="next", <https://a.example/p?page=1>; rel="prev"',
    });
  });

  it('log the request URL redacted and leave out the parsed query', () => {
    const headers = { host: 'h' };
    const serialized = serializeLogRequest({
      id: 'r1',
      method: 'GET',
      url: '/daily/?/p&c=x&r=RCPT&s=SIG',
      headers,
      remoteAddress: '127.0.0.1',
      remotePort: 1,
      ...{ query: { r: 'RCPT', s: 'SIG' } },
    });
    expect(serialized).toEqual({
      id: 'r1',
      method: 'GET',
      url: '/daily/?/p&c=x&r=[redacted]&s=[redacted]',
      headers: { host: 'h' },
      remoteAddress: '127.0.0.1',
      remotePort: 1,
    });
    expect(serialized.headers).not.toBe(headers);
  });

  it('redact the response Location and Set-Cookie', () => {
    expect(
      serializeLogResponse({
        statusCode: 302,
        headers: { location: '/next?code=C&x=1', 'set-cookie': ['a=1'], 'x-request-id': 'r1' },
      }),
    ).toEqual({
      statusCode: 302,
      headers: { location: '/next?code=[redacted]&x=1', 'set-cookie': '[redacted]', 'x-request-id': 'r1' },
    });
  });
});
