import { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { validationFailed, zodProblems } from './validation-failed.exception';

/**
 * Validates a query, body or param against a zod schema; 400 lists every problem by field (a
 * problem with the whole value is named after the param, or `query`/`body`).
 */
export class ZodValidationPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(readonly schema: S) {}

  transform(value: unknown, metadata?: ArgumentMetadata): z.infer<S> {
    const result = this.schema.safeParse(value);
    if (result.success) return result.data;
    throw validationFailed(zodProblems(result.error.issues, metadata?.data ?? metadata?.type ?? 'value'));
  }
}
