import { BadRequestException } from '@nestjs/common';
import { z } from 'zod';
import { validationFailed } from './validation-failed.exception';

/**
 * A whole number in a query string: digits only (no `1e3`, `0x10`, ` 5`, `5.0` or repeated
 * parameters), within `[min, max]`.
 */
export const queryInteger = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/**
 * The `cursor` of a list: opaque to clients, the `nextCursor` of the previous page. Its content is
 * checked by the store that made it (see {@link invalidCursor}).
 */
export const cursorSchema = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be the nextCursor of a previous page');

/** `?limit=&cursor=` on every list; the cursor is opaque to clients. */
export const paginationSchema = z.strictObject({
  limit: queryInteger(1, 200).default(50),
  cursor: cursorSchema.optional(),
});

/** The 400 of a cursor its store refused to decode, like any other invalid query field. */
export function invalidCursor(): BadRequestException {
  return validationFailed([{ field: 'cursor', message: 'must be the nextCursor of a previous page' }]);
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
