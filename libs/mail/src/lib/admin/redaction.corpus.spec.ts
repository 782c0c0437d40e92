import {
  configuredSecrets,
  leakedItems,
  plantScenario,
  REDACTION_CORPUS,
  REDACTION_LOOKALIKES,
  type RedactionCorpusItem,
} from '@once/testing';
import { resolveMailOptions } from '../mail.options';
import { renderAdminErrorMail } from './admin-error-mail.renderer';
import { SecretRedactor } from './secret.redactor';

const admin = resolveMailOptions({
  ses: { region: 'us-east-1' },
  redis: { eval: () => undefined } as never,
  defaultFrom: 'once@example.com',
  adminErrors: { recipients: ['ops@example.com'], appName: 'api', appVersion: '1.2.3', environment: 'test' },
}).adminErrors!;

const redactor = new SecretRedactor({ secrets: configuredSecrets() });

/** What the redactor makes of one item on its own, planted as the item says. */
function redactItem(item: RedactionCorpusItem): string {
  const plant = item.plant;
  switch (plant.in) {
    case 'header':
      return JSON.stringify(redactor.redact({ [plant.name]: plant.value }));
    case 'query':
      return redactor.redactString(`/digests/1?page=2&${plant.query}`);
    case 'detail':
    case 'property':
    case 'thrown':
      return JSON.stringify(redactor.redact(plant.value));
    default:
      return redactor.redactString(plant.text);
  }
}

function renderAll(items: readonly RedactionCorpusItem[]): string {
  const scenario = plantScenario(items);
  const render = (error: unknown, source: string) => {
    const { subject, text } = renderAdminErrorMail(
      {
        error,
        context: {
          source,
          request: {
            method: 'GET',
            url: scenario.request.url,
            headers: scenario.request.headers,
            ip: '10.0.0.7',
          },
          details: scenario.details,
        },
        fingerprint: '0123456789abcdef',
        occurredAt: new Date('2026-11-22T10:00:00.000Z'),
        moreOccurrences: 0,
      },
      admin,
      redactor,
    );
    return `${subject}\n${text}`;
  };
  return [render(scenario.error, 'http'), ...scenario.thrown.map((value) => render(value, 'worker'))].join(
    '\n',
  );
}

describe('redaction corpus', () => {
  it('has at least 80 unique secrets', () => {
    expect(REDACTION_CORPUS.length).toBeGreaterThanOrEqual(80);
    expect(new Set(REDACTION_CORPUS.map((item) => item.secret)).size).toBe(REDACTION_CORPUS.length);
    expect(new Set(REDACTION_CORPUS.map((item) => item.id)).size).toBe(REDACTION_CORPUS.length);
  });

  it('leaks no item through SecretRedactor, in any encoding', () => {
    const leaks = REDACTION_CORPUS.filter((item) => leakedItems(redactItem(item), [item]).length > 0);
    expect(leaks.map((item) => `${item.class}/${item.id}`)).toEqual([]);
  });

  it('leaks no item through the rendered mail (subject and text), in any encoding', () => {
    expect(leakedItems(renderAll(REDACTION_CORPUS))).toEqual([]);
  });

  it('leaves every look-alike intact', () => {
    const damaged = REDACTION_LOOKALIKES.filter((text) => redactor.redactString(text) !== text);
    expect(damaged.map((text) => `${text} -> ${redactor.redactString(text)}`)).toEqual([]);
  });

  it('keeps look-alikes in the rendered mail', () => {
    const text = renderAll([]);
    const mail = renderAdminErrorMail(
      {
        error: new Error(REDACTION_LOOKALIKES.join(' ; ')),
        context: { source: 'worker', details: { lookalikes: [...REDACTION_LOOKALIKES] } },
        fingerprint: '0123456789abcdef',
        occurredAt: new Date('2026-11-22T10:00:00.000Z'),
        moreOccurrences: 0,
      },
      admin,
      redactor,
    );
    expect(text).toContain('Stack');
    const missing = REDACTION_LOOKALIKES.filter(
      (lookalike) =>
        !mail.text.includes(lookalike) && !mail.text.includes(JSON.stringify(lookalike).slice(1, -1)),
    );
    expect(missing).toEqual([]);
  });
});
