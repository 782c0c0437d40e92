import fc from 'fast-check';
import {
  addressKey,
  AddressSyntaxError,
  parseAddress,
  parseMailbox,
  unsubscribeMailto,
  unsubscribeUrl,
} from './mail-address';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`mail-address.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

const refused = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AddressSyntaxError);
    return (error as Error).message;
  }
  throw new Error('expected an AddressSyntaxError');
};

describe('parseAddress', () => {
  it('keeps the local part as given, sends the domain in ASCII and compares lower-cased', () => {
    expect(parseAddress('X.Y+tag@EXAMPLE.COM')).toEqual({
      address: 'X.Y+tag@example.com',
      key: 'x.y+tag@example.com',
    });
    expect(parseAddress('Ann@Bücher.DE')).toEqual({
      address: 'Ann@xn--bcher-kva.de',
      key: 'ann@xn--bcher-kva.de',
    });
    // Full-width dots and letters are IDNA-mapped to the same hostname.
    expect(parseAddress('a@ｅｘａｍｐｌｅ．ｃｏｍ').key).toBe('a@example.com');
    expect(addressKey('A@Bücher.de')).toBe(addressKey('a@XN--BCHER-KVA.DE'));
  });

  it('refuses domains that are not hostnames and local parts SES cannot send to', () => {
    for (const bad of [
      'a@localhost',
      'a@1.2.3.4',
      'a@[::1]',
      'a@-x.com',
      'a@x..com',
      'a@x_y.com',
      'a@xn--zz.com',
    ])
      expect(refused(() => parseAddress(bad))).toContain('hostname');
    expect(refused(() => parseAddress('jürgen@example.com'))).toContain('local part');
    expect(refused(() => parseAddress('"a b"@example.com'))).toMatch(/white space|local part/);
    expect(refused(() => parseAddress('a..b@example.com'))).toContain('local part');
    expect(refused(() => parseAddress('a@example.com\u2028'))).toContain('U+2028');
    expect(refused(() => parseAddress('a@exam\u0000ple.com'))).toContain('NUL');
    expect(refused(() => parseAddress('a@b.com,c@d.com'))).toBeTruthy();
  });

  it('gives every case and IDN spelling of one mailbox one key (property)', () => {
    const label = fc.stringMatching(/^[a-zäöüß]{1,10}$/);
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9]{1,12}$/),
        label,
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        (local, domainLabel, upper) => {
          // 'ß'.toUpperCase() is 'SS': another name (UTS 46 maps ß to xn--zca), so it keeps its case.
          const flip = (char: string) => (char.toUpperCase().length === 1 ? char.toUpperCase() : char);
          const spelled = (value: string, offset: number) =>
            [...value].map((char, i) => (upper[(i + offset) % upper.length] ? flip(char) : char)).join('');
          const a = parseAddress(`${local}@${domainLabel}.example`);
          const b = parseAddress(`${spelled(local, 0)}@${spelled(domainLabel, 7)}.EXAMPLE`);
          expect(b.key).toBe(a.key);
          expect(b.address).toMatch(/^[\x21-\x7e]+$/);
          expect(b.address.split('@')[1]).toBe(a.address.split('@')[1]);
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});

describe('addressKey', () => {
  it('lower-cases, unwraps display names and sends IDN domains in ASCII', () => {
    expect(addressKey(' Ada <ADA@Example.COM>')).toBe('ada@example.com');
    expect(addressKey('Bob@Example.com')).toBe('bob@example.com');
    expect(addressKey('Ann@Bücher.DE')).toBe('ann@xn--bcher-kva.de');
  });
});

describe('parseMailbox', () => {
  it('quotes or encodes display names and keeps one mailbox', () => {
    expect(parseMailbox('Once <digest@once.example>').header).toBe('Once <digest@once.example>');
    expect(parseMailbox('"Once, Inc." <digest@once.example>').header).toBe(
      '"Once, Inc." <digest@once.example>',
    );
    expect(parseMailbox('J. Doe <j@once.example>').header).toBe('"J. Doe" <j@once.example>');
    expect(parseMailbox('Bücher Team <b@Bücher.de>').header).toBe(
      `=?UTF-8?B?${Buffer.from('Bücher Team').toString('base64')}?= <b@xn--bcher-kva.de>`,
    );
  });

  it('refuses display-name tricks, line separators and several mailboxes', () => {
    expect(refused(() => parseMailbox('"ceo@once.example" <evil@x.io>'))).toContain('display name');
    expect(refused(() => parseMailbox('Once, Inc <a@once.example>'))).toContain('quote');
    expect(refused(() => parseMailbox('a@once.example, b@evil.io'))).toBeTruthy();
    expect(refused(() => parseMailbox('A <a@once.example>, B <b@evil.io>'))).toContain('one mailbox');
    expect(refused(() => parseMailbox('Once\u2028Bcc: x@evil.io <a@once.example>'))).toContain('U+2028');
    expect(refused(() => parseMailbox('Once\u202e <a@once.example>'))).toContain('bidi');
    expect(refused(() => parseMailbox('"Once" x <a@once.example>'))).toContain('after the quoted');
  });

  it('refuses look-alikes of "@", "<", ">" and invisible format characters in the display name', () => {
    for (const name of [
      '"ceo\uff20once.example"',
      'ceo\ufe6bonce.example',
      'Once \uff1cceo@once.example\uff1e',
      'Once \ufe64x\ufe65',
    ])
      expect(refused(() => parseMailbox(`${name} <evil@x.io>`))).toContain('display name');
    for (const char of ['\u200b', '\u2060', '\ufeff', '\u00ad', '\u200d', '\u2061'])
      expect(refused(() => parseMailbox(`On${char}ce <a@once.example>`))).toContain('format character');
    // Other fullwidth letters are just a name.
    expect(parseMailbox('\uff2f\uff4e\uff43\uff45 <a@once.example>').displayName).toBe(
      '\uff2f\uff4e\uff43\uff45',
    );
  });
});

describe('unsubscribeMailto', () => {
  it('keeps one recipient and subject/body fields', () => {
    expect(unsubscribeMailto('Unsub@Once.Example')).toBe('mailto:Unsub@once.example');
    expect(unsubscribeMailto('mailto:u@once.example?subject=unsubscribe%20a%40b.c&BODY=x')).toBe(
      'mailto:u@once.example?subject=unsubscribe%20a%40b.c&BODY=x',
    );
    // RFC 6068 reserved atext is percent-encoded, so the address decodes back to itself.
    expect(unsubscribeMailto('a%2Cb#c@once.example')).toBe('mailto:a%252Cb%23c@once.example');
  });

  it('refuses hfields that add recipients and percent-encoded controls', () => {
    for (const query of [
      '?to=evil@x.io',
      '?cc=evil@x.io',
      '?subject=x&bcc=evil@x.io',
      '?%74o=evil@x.io',
      '?BCC=evil@x.io',
      '?subject',
      '?subject=x&',
      '?',
    ])
      expect(refused(() => unsubscribeMailto(`mailto:u@once.example${query}`))).toContain('subject=');
    for (const value of ['%0d%0aBcc:%20evil@x.io', '%0A', '%00', '%7f', '%c2%85', '%E2%80%A8', '%e2%80%a9'])
      expect(refused(() => unsubscribeMailto(`mailto:u@once.example?subject=${value}`))).toContain(
        'percent-decoded',
      );
    expect(refused(() => unsubscribeMailto('mailto:u@once.example?subject=%ff'))).toContain('UTF-8');
    expect(refused(() => unsubscribeMailto('mailto:u@once.example,evil@x.io'))).toBeTruthy();
  });
});

describe('unsubscribeUrl', () => {
  it('serializes through the URL parser and refuses what would be dropped or split the header', () => {
    expect(unsubscribeUrl('https://Once.Example/u?t=1')).toBe('https://once.example/u?t=1');
    expect(unsubscribeUrl('https://bücher.de/ü')).toBe('https://xn--bcher-kva.de/%C3%BC');
    expect(refused(() => unsubscribeUrl('https://once.example/u>, <https://evil.io/'))).toMatch(
      /white space|","|">"/,
    );
    expect(refused(() => unsubscribeUrl('https://once.example/u,https://evil.io/'))).toContain('","');
    expect(refused(() => unsubscribeUrl('https://once.example/u\n?x'))).toContain('LF');
    expect(refused(() => unsubscribeUrl('https://once.example\\@evil.io/'))).toContain('\\');
    expect(refused(() => unsubscribeUrl('https://user:pw@once.example/'))).toContain('credentials');
    expect(refused(() => unsubscribeUrl('http://once.example/'))).toContain('https');
    expect(refused(() => unsubscribeUrl('https://127.0.0.1/u'))).toContain('hostname');
  });
});
