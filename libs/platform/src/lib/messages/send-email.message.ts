import { z } from 'zod';

/** Body of a message on the send-email queue: one email to one recipient. */
export const sendEmailMessageSchema = z.object({
  eventId: z.string().min(1),
  to: z.email(),
  subject: z.string().min(1).max(998),
  text: z.string().min(1),
  userId: z.string().optional(),
});
export type SendEmailMessage = z.infer<typeof sendEmailMessageSchema>;
