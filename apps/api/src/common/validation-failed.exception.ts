import { BadRequestException } from '@nestjs/common';
import type { z } from 'zod';

/** One problem of a 400: the field (path, query or body, dotted for nested values) and what is wrong. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** The one 400 body of invalid input: `{ statusCode: 400, error, message: 'validation failed', details }`. */
export function validationFailed(details: FieldProblem[]): BadRequestException {
  return new BadRequestException({
    statusCode: 400,
    error: 'Bad Request',
    message: 'validation failed',
    details,
  });
}

/** Zod issues as field problems; `root` names the field of issues about the whole value. */
export function zodProblems(issues: readonly z.core.$ZodIssue[], root: string): FieldProblem[] {
  return issues.flatMap((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : root;
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({
        field: field === root ? key : `${field}.${key}`,
        message: 'is not a known field',
      }));
    return [{ field, message: issue.message }];
  });
}
