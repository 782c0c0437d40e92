import { mergeUtm } from './utm.merger';

const utm = { source: 'email', medium: 'email', campaign: 'Daily_Notification' };

describe('mergeUtm', () => {
  it('appends utm_* in order to a bare path', () => {
    expect(mergeUtm(new URL('https://site.example/updates/x/'), utm)).toBe(
      'https://site.example/updates/x/?utm_source=email&utm_medium=email&utm_campaign=Daily_Notification',
    );
  });

  it('keeps the existing query byte for byte and the fragment last', () => {
    expect(mergeUtm(new URL('https://site.example/s?q=a%20b&flag&x=1+2#part-2'), utm)).toBe(
      'https://site.example/s?q=a%20b&flag&x=1+2&utm_source=email&utm_medium=email&utm_campaign=Daily_Notification#part-2',
    );
  });

  it('never overwrites a utm_* already on the target, even an empty one', () => {
    expect(mergeUtm(new URL('https://site.example/s?utm_source=rss&utm_campaign=#f'), utm)).toBe(
      'https://site.example/s?utm_source=rss&utm_campaign=&utm_medium=email#f',
    );
  });

  it('supports all six keys, encodes values with URLSearchParams and skips empty ones', () => {
    const all = { source: 's', medium: 'm', campaign: 'c d', content: 'x&y=z', term: 'é', id: '' };
    expect(mergeUtm(new URL('https://site.example/'), all)).toBe(
      'https://site.example/?utm_source=s&utm_medium=m&utm_campaign=c+d&utm_content=x%26y%3Dz&utm_term=%C3%A9',
    );
  });

  it('leaves the URL alone when there is nothing to add', () => {
    expect(mergeUtm(new URL('https://site.example/a?b=1#c'), {})).toBe('https://site.example/a?b=1#c');
    expect(mergeUtm(new URL('https://site.example/a?#c'), { source: 'e' })).toBe(
      'https://site.example/a?utm_source=e#c',
    );
  });
});
