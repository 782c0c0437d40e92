import { z } from 'zod';

/** `?limit=&cursor=` on every list; the cursor is opaque to clients. */
export const paginationSchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
});

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
