import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { Request } from 'express';
import { inputProblems, rawQueryProblems } from './input-text.check';
import { FieldProblem, validationFailed } from './validation-failed.exception';

/** What a handler reads through Nest's parameter decorators. */
interface HandlerInputs {
  /** `@Req()`: the handler reads the raw request and checks its input itself. */
  raw: boolean;
  body: boolean;
}

/**
 * Refuses, with the 400 of every invalid input and before any pipe or handler runs, text no route
 * can take: NUL, control characters and lone surrogates in path params and query values and names
 * (also query text that is not valid percent-encoded UTF-8), and in the strings and keys of JSON
 * bodies (where tab, LF and CR are allowed), `__proto__`-like keys and bodies nested deeper than a
 * route reads. A route that takes a `@Body()` also refuses a body that is not JSON, instead of
 * running on its defaults. Handlers that take the raw request (`@Req()`: the click redirect, the
 * SNS webhook) are left to check their own input: they verify a signature over it first.
 */
@Injectable()
export class HttpInputGuard implements CanActivate {
  private readonly inputs = new WeakMap<object, HandlerInputs>();

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const inputs = this.inputsOf(context);
    if (inputs.raw) return true;
    const request = context.switchToHttp().getRequest<Request>();
    const problems: FieldProblem[] = [];
    for (const [name, value] of Object.entries(request.params ?? {}))
      problems.push(...inputProblems(value, name, 'url'));
    const url = request.originalUrl ?? request.url ?? '';
    const rawQuery = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
    problems.push(...rawQueryProblems(rawQuery));
    if (problems.length === 0) problems.push(...inputProblems(request.query, '', 'url'));
    if (inputs.body && hasBody(request)) {
      if (!request.is(['application/json', 'application/*+json']))
        problems.push({ field: 'content-type', message: 'must be application/json' });
      else problems.push(...inputProblems(request.body, '', 'body'));
    }
    if (problems.length > 0) throw validationFailed(problems);
    return true;
  }

  private inputsOf(context: ExecutionContext): HandlerInputs {
    const handler = context.getHandler();
    let inputs = this.inputs.get(handler);
    if (!inputs) {
      const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ??
        {}) as Record<string, unknown>;
      const types = new Set(Object.keys(args).map((key) => Number(key.split(':')[0])));
      inputs = { raw: types.has(RouteParamtypes.REQUEST), body: types.has(RouteParamtypes.BODY) };
      this.inputs.set(handler, inputs);
    }
    return inputs;
  }
}

/** Whether the request carries a body at all (as body parsers decide it). */
function hasBody(request: Request): boolean {
  return (
    request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0
  );
}
