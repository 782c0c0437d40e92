import type { Message } from '@aws-sdk/client-sqs';
import { parseMessageBody } from '@once/platform';
import type { z } from 'zod';

/**
 * An `@Idempotent` key function that validates the whole body first: a malformed message throws,
 * so the dedup lib dead-letters it (the reason is the validation error) before any claim. Were it
 * claimed and then dead-lettered by the handler, its key would be COMPLETED and a corrected or
 * redriven copy would be deleted as a duplicate.
 */
export const validEventId =
  <S extends z.ZodType<{ eventId: string }>>(schema: S) =>
  (message: Message): string =>
    parseMessageBody(schema, message).eventId;
