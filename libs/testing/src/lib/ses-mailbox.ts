/** One email as the SES emulator (aws-ses-v2-local) stores it. */
export interface StoredEmail {
  messageId: string;
  from: string;
  destination: { to: string[]; cc: string[]; bcc: string[] };
  subject: string;
  body: { text?: string; html?: string };
  headers?: Array<{ name: string; value: string }>;
  at: number;
}

/** Subject, text and HTML of a stored email as one text (what a reader of the mail sees). */
export const mailText = (email: StoredEmail): string =>
  `${email.subject}\n${email.body.text ?? ''}\n${email.body.html ?? ''}`;

/** Reads and clears the SES emulator's mailbox over HTTP. */
export class SesMailbox {
  constructor(private readonly endpoint: string) {}

  async all(): Promise<StoredEmail[]> {
    const response = await fetch(`${this.endpoint}/store`);
    if (!response.ok) throw new Error(`SES emulator /store answered ${response.status}`);
    const { emails } = (await response.json()) as { emails: StoredEmail[] };
    return emails;
  }

  async clear(): Promise<void> {
    const response = await fetch(`${this.endpoint}/clear-store`, { method: 'POST' });
    if (!response.ok) throw new Error(`SES emulator /clear-store answered ${response.status}`);
  }
}
