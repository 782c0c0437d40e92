/** What the secret redactor hides in admin error mail, in addition to its built-in rules. */
export interface RedactorOptions {
  /** More header, field and query-parameter names whose values are hidden (case-insensitive exact names, or patterns). */
  keys?: Array<string | RegExp>;
  /**
   * Literal secret values (API keys, passwords from config) hidden wherever they appear: raw,
   * URL-encoded (once or twice), JSON-escaped, hex, base64 and base64url (also inside a longer
   * base64 text). Each must have at least `minSecretLength` characters.
   */
  secrets?: string[];
  /** Extra patterns whose matches are hidden (must not match the empty string). */
  patterns?: RegExp[];
  /** Shortest configured secret accepted: shorter ones would mask common words. Default 8. */
  minSecretLength?: number;
  /** Strings are cut to this many characters, after redaction. Default 20 000. */
  maxStringLength?: number;
}

function optionError(option: string, problem: string): Error {
  return new Error(`Invalid admin error redaction options (adminErrors.redact): ${option} ${problem}`);
}

const OPTION_NAMES = new Set(['keys', 'secrets', 'patterns', 'minSecretLength', 'maxStringLength']);

export function validateOptions(options: unknown): RedactorOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw optionError('(root)', 'must be an object');
  }
  const given = options as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!OPTION_NAMES.has(name))
      throw optionError(name, `is not an option (known: ${[...OPTION_NAMES].join(', ')})`);
  }
  const positiveInt = (name: string, least: number): void => {
    const value = given[name];
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < least)) {
      throw optionError(name, `must be an integer of at least ${least}`);
    }
  };
  positiveInt('minSecretLength', 1);
  positiveInt('maxStringLength', 100);
  const list = (name: string, valid: (item: unknown) => boolean, expected: string): void => {
    const value = given[name];
    if (value === undefined) return;
    if (!Array.isArray(value)) throw optionError(name, `must be an array of ${expected}`);
    value.forEach((item, index) => {
      if (!valid(item)) throw optionError(`${name}[${index}]`, `must be ${expected}`);
    });
  };
  list(
    'keys',
    (item) => (typeof item === 'string' && item.length > 0) || item instanceof RegExp,
    'non-empty strings or RegExps',
  );
  list('secrets', (item) => typeof item === 'string', 'strings');
  list('patterns', (item) => item instanceof RegExp, 'RegExps');
  const minLength = (given['minSecretLength'] as number | undefined) ?? 8;
  (given['secrets'] as string[] | undefined)?.forEach((secret, index) => {
    if (secret.length < minLength) {
      throw optionError(
        `secrets[${index}]`,
        `is ${secret.length} characters, shorter than minSecretLength (${minLength}): it would mask common text, so it cannot be hidden reliably`,
      );
    }
  });
  (given['patterns'] as RegExp[] | undefined)?.forEach((pattern, index) => {
    if (new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')).test('')) {
      throw optionError(`patterns[${index}]`, 'matches the empty string');
    }
  });
  return given as RedactorOptions;
}
