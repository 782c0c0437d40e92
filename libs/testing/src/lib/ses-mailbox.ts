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
