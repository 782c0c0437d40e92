import {
  ConflictException,
  Controller,
  Delete,
  Get,
  HttpCode,
  Logger,
  NotFoundException,
  Param,
  Query,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import {
  IdempotencyRecord,
  IdempotencyService,
  InvalidListCursorError,
  validateIdempotencyKey,
  validateIdempotencyScope,
  validateListPrefix,
} from '@once/dedup';
import { booleanString } from '@once/platform';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { invalidCursor, Page, paginationSchema } from '../common/pagination';
import { ZodValidationPipe } from '../common/zod-validation.pipe';

/** A zod refinement from a @once/dedup validator: its message names the problem. */
const checkedBy =
  (validate: (value: string) => string | undefined, field?: string) =>
  (value: string, ctx: z.RefinementCtx) => {
    const problem = validate(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, ...(field ? { path: [field] } : {}) });
  };

/** Scopes are part of every stored key: the dedup lib's rules (at most 200 UTF-8 bytes, no ":" or control characters). */
const scopeSchema = z.string().superRefine(checkedBy(validateIdempotencyScope));

/** The `scope:key` prefix a list query stands for. */
const combinedPrefix = (query: { scope?: string; prefix?: string }): string | undefined =>
  query.scope === undefined ? query.prefix : `${query.scope}:${query.prefix ?? ''}`;

const listQuery = new ZodValidationPipe(
  paginationSchema
    .extend({
      state: z.enum(['IN_PROGRESS', 'COMPLETED']).optional(),
      scope: scopeSchema.optional(),
      prefix: z.string().min(1).max(2000).optional(),
    })
    .superRefine((query, ctx) => {
      // The prefix the service is asked for, held to the rules of the scope and key it prefixes.
      const problem =
        query.prefix === undefined ? undefined : validateListPrefix(combinedPrefix(query) ?? '');
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['prefix'] });
    }),
);
type ListQuery = z.infer<typeof listQuery.schema>;

// The same validation as every IdempotencyService entry point, but as a 400 naming the field.
const scopeParam = new ZodValidationPipe(
  z.string().superRefine(checkedBy(validateIdempotencyScope, 'scope')),
);
const keyParam = new ZodValidationPipe(z.string().superRefine(checkedBy(validateIdempotencyKey, 'key')));
const forgetQuery = new ZodValidationPipe(
  z.strictObject({
    force: booleanString.default(false),
    reason: z.string().trim().min(1).max(500).optional(),
  }),
);

/** What `DELETE /admin/idempotency/:scope/:key` answers. */
export interface ForgetResult {
  forgotten: true;
  /** The record as it was just before it was deleted. */
  previous: IdempotencyRecord;
}

/**
 * The dedup records of every worker (Postgres is authoritative with the redis+postgres store, Redis
 * for DEDUP_REDIS_ONLY_SCOPES):
 * browse them, and forget one to make its next delivery run again.
 */
@ApiTags('admin: idempotency')
@AdminOnly()
@Controller('admin/idempotency')
export class IdempotencyAdminController {
  private readonly logger = new Logger(IdempotencyAdminController.name);

  constructor(private readonly idempotency: IdempotencyService) {}

  @Get()
  @ApiOperation({
    summary:
      'Live idempotency records, filtered by state, scope and key prefix: in key order (scope:key) from Postgres, in SCAN order (master by master on a cluster) from a Redis-only store or for a scope of DEDUP_REDIS_ONLY_SCOPES (e.g. scope=send-email)',
  })
  @ApiQuery({ name: 'state', required: false, enum: ['IN_PROGRESS', 'COMPLETED'] })
  @ApiQuery({ name: 'scope', required: false, description: 'e.g. jobs or send-email', example: 'jobs' })
  @ApiQuery({
    name: 'prefix',
    required: false,
    description:
      'prefix of the key (within scope when scope is given, else of "scope:key"); the same rules as keys and scopes',
    example: 'daily-digest',
  })
  @ApiQuery({ name: 'limit', required: false, description: '1–200, default 50', example: 20 })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  @ApiOkResponse({ description: '{ items: IdempotencyRecord[], nextCursor: string | null }' })
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  async list(@Query(listQuery) query: ListQuery): Promise<Page<IdempotencyRecord>> {
    const page = await this.idempotency
      .list({ state: query.state, prefix: combinedPrefix(query), limit: query.limit, cursor: query.cursor })
      .catch((error: unknown) => {
        throw error instanceof InvalidListCursorError ? invalidCursor() : error;
      });
    return { items: page.items, nextCursor: page.nextCursor ?? null };
  }

  @Get(':scope/:key')
  @ApiOperation({ summary: 'One live idempotency record' })
  @ApiParam({ name: 'scope', description: 'e.g. jobs', example: 'jobs' })
  @ApiParam({
    name: 'key',
    example: 'daily-digest:2026-11-22T07:00:00.000Z',
    description: 'the idempotency key (URL-encoded), e.g. daily-digest:2026-11-22T07:00:00.000Z',
  })
  @ApiOkResponse({ description: 'IdempotencyRecord' })
  @ApiBadRequestResponse({ description: 'a scope or key no store could hold (details name the problem)' })
  @ApiNotFoundResponse({ description: 'no live record for this key' })
  async get(
    @Param('scope', scopeParam) scope: string,
    @Param('key', keyParam) key: string,
  ): Promise<IdempotencyRecord> {
    const record = await this.idempotency.get(key, { scope });
    if (!record) throw new NotFoundException(`no idempotency record for ${scope}:${key}`);
    return record;
  }

  /**
   * Forgetting a COMPLETED record lets the next delivery of the key run its side effect again.
   * Forgetting an IN_PROGRESS record whose lease is live would let a duplicate run alongside the
   * worker still holding it, so that takes `?force=true` (409 otherwise); an expired lease is
   * free to release.
   */
  @Delete(':scope/:key')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Forget a record so the next delivery of the key is processed again (audited); IN_PROGRESS with a live lease needs force=true',
  })
  @ApiParam({ name: 'scope', description: 'e.g. jobs', example: 'jobs' })
  @ApiParam({
    name: 'key',
    description: 'the idempotency key (URL-encoded)',
    example: 'daily-digest:2026-11-22T07:00:00.000Z',
  })
  @ApiQuery({
    name: 'force',
    required: false,
    description: 'true to release an IN_PROGRESS record a live worker holds (its effect may then run twice)',
    enum: ['true', 'false'],
  })
  @ApiQuery({
    name: 'reason',
    required: false,
    description: 'why, for the audit log',
    example: 'replay after the fix',
  })
  @ApiOkResponse({ description: '{ forgotten: true, previous: IdempotencyRecord }' })
  @ApiBadRequestResponse({ description: 'a scope or key no store could hold, or an invalid query' })
  @ApiNotFoundResponse({ description: 'no live record for this key' })
  @ApiConflictResponse({ description: 'the record is IN_PROGRESS under a live lease and force is not set' })
  async forget(
    @Param('scope', scopeParam) scope: string,
    @Param('key', keyParam) key: string,
    @Query(forgetQuery) query: z.infer<typeof forgetQuery.schema>,
    @Admin() actor: string,
  ): Promise<ForgetResult> {
    const previous = await this.idempotency.get(key, { scope });
    if (!previous) throw new NotFoundException(`no idempotency record for ${scope}:${key}`);
    const held = previous.state === 'IN_PROGRESS' && (previous.leaseUntil?.getTime() ?? 0) > Date.now();
    if (held && !query.force) {
      throw new ConflictException(
        `${scope}:${key} is IN_PROGRESS under a live lease until ${previous.leaseUntil?.toISOString()}; ` +
          'releasing it may run its side effect twice: retry with force=true to do it anyway',
      );
    }
    // Not a literal: `force` is only passed on once IdempotencyService.forget takes it.
    const options = { scope, force: query.force };
    let forgotten: boolean;
    try {
      forgotten = await this.idempotency.forget(key, options);
    } catch (error) {
      // A worker claimed the key between the read above and the delete.
      if (error instanceof Error && error.name === 'RecordInFlightError') {
        throw new ConflictException(
          `${scope}:${key} became IN_PROGRESS under a live lease; retry with force=true to release it anyway`,
        );
      }
      throw error;
    }
    if (!forgotten) throw new NotFoundException(`no idempotency record for ${scope}:${key}`);
    this.logger.log({
      msg: 'audit: idempotency record forgotten',
      actor,
      scope,
      idempotencyKey: key,
      messageId: previous.messageId,
      previousState: previous.state,
      attempts: previous.attempts,
      leaseHeld: held,
      force: query.force,
      reason: query.reason,
    });
    return { forgotten: true, previous };
  }
}
