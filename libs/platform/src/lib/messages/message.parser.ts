import type { z } from 'zod';

/** A message body that is not JSON or does not match its schema. Never retried into success. */
export class MalformedMessageError extends Error {
  constructor(
    message: string,
    readonly messageId: string | undefined,
  ) {
    super(message);
    this.name = 'MalformedMessageError';
  }
}

/** Parses and validates an SQS message body, or throws {@link MalformedMessageError}. */
export function parseMessageBody<S extends z.ZodType>(
  schema: S,
  message: { Body?: string; MessageId?: string },
): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(message.Body ?? '');
  } catch {
    throw new MalformedMessageError('message body is not JSON', message.MessageId);
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const detail = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new MalformedMessageError(`message body is invalid: ${detail}`, message.MessageId);
  }
  return result.data;
}
