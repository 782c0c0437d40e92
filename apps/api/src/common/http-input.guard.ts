import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { inputProblems, rawQueryProblems } from './input-text.check';
import { RAW_INPUT } from './raw-input.decorator';
import { FieldProblem, validationFailed } from './validation-failed.exception';

/**
 * Refuses, with the 400 of every invalid input and before any pipe or handler runs, text no route
 * can take: NUL, control characters and lone surrogates in path params and query values and names
 * (also query text that is not valid percent-encoded UTF-8), and in the strings and keys of JSON
 * bodies (where tab, LF and CR are allowed), `__proto__`-like keys and bodies nested deeper than a
 * route reads. A body that is not JSON is refused too, so a route never runs on its defaults
 * because its body went unparsed. Routes marked {@link RawInput} (the click redirect, the SNS
 * webhook) are left to check their own input: they verify a signature over it first.
 */
@Injectable()
export class HttpInputGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    if (this.reflector.getAllAndOverride<boolean>(RAW_INPUT, [context.getHandler(), context.getClass()]))
      return true;
    const request = context.switchToHttp().getRequest<Request>();
    const problems: FieldProblem[] = [];
    for (const [name, value] of Object.entries(request.params ?? {}))
      problems.push(...inputProblems(value, name, 'url'));
    const url = request.originalUrl ?? request.url ?? '';
    const rawQuery = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
    problems.push(...rawQueryProblems(rawQuery));
    if (problems.length === 0) problems.push(...inputProblems(request.query, '', 'url'));
    if (hasBody(request)) {
      if (!request.is(['application/json', 'application/*+json']))
        problems.push({ field: 'content-type', message: 'must be application/json' });
      else problems.push(...inputProblems(request.body, '', 'body'));
    }
    if (problems.length > 0) throw validationFailed(problems);
    return true;
  }
}

/** Whether the request carries a body at all (as body parsers decide it). */
function hasBody(request: Request): boolean {
  return (
    request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0
  );
}
