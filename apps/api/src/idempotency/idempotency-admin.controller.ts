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
import { IdempotencyRecord, IdempotencyService } from '@once/dedup';
import { booleanString } from '@once/platform';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { Page, paginationSchema } from '../common/pagination';
import { ZodValidationPipe } from '../common/zod-validation.pipe';

/** Scopes are part of every stored key and may not contain `:`. */
const scopeSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^:]+$/, 'must not contain ":"');

const listQuery = new ZodValidationPipe(
  paginationSchema.extend({
    state: z.enum(['IN_PROGRESS', 'COMPLETED']).optional(),
    scope: scopeSchema.optional(),
    prefix: z.string().min(1).max(500).optional(),
    cursor: z
      .string()
      .max(500)
      .regex(/^[A-Za-z0-9_-]+$/, 'must be the nextCursor of a previous page')
      .optional(),
  }),
);
type ListQuery = z.infer<typeof listQuery.schema>;

const scopeParam = new ZodValidationPipe(scopeSchema);
const keyParam = new ZodValidationPipe(z.string().min(1).max(512));
const forgetQuery = new ZodValidationPipe(
  z.object({
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
 * The dedup records of every worker (Postgres is authoritative with the redis+postgres store):
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
    summary: 'Live idempotency records in key order (scope:key), filtered by state, scope and key prefix',
  })
  @ApiQuery({ name: 'state', required: false, enum: ['IN_PROGRESS', 'COMPLETED'] })
  @ApiQuery({ name: 'scope', required: false, description: 'e.g. jobs or send-email' })
  @ApiQuery({
    name: 'prefix',
    required: false,
    description: 'prefix of the key (within scope when scope is given, else of "scope:key")',
  })
  @ApiQuery({ name: 'limit', required: false, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  @ApiOkResponse({ description: '{ items: IdempotencyRecord[], nextCursor: string | null }' })
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  async list(@Query(listQuery) query: ListQuery): Promise<Page<IdempotencyRecord>> {
    const prefix = query.scope === undefined ? query.prefix : `${query.scope}:${query.prefix ?? ''}`;
    const page = await this.idempotency.list({
      state: query.state,
      prefix,
      limit: query.limit,
      cursor: query.cursor,
    });
    return { items: page.items, nextCursor: page.nextCursor ?? null };
  }

  @Get(':scope/:key')
  @ApiOperation({ summary: 'One live idempotency record' })
  @ApiParam({ name: 'scope', description: 'e.g. jobs' })
  @ApiParam({
    name: 'key',
    description: 'the idempotency key (URL-encoded), e.g. daily-digest:2026-11-22T07:00:00.000Z',
  })
  @ApiOkResponse({ description: 'IdempotencyRecord' })
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
  @ApiParam({ name: 'scope', description: 'e.g. jobs' })
  @ApiParam({ name: 'key', description: 'the idempotency key (URL-encoded)' })
  @ApiQuery({
    name: 'force',
    required: false,
    description: 'true to release an IN_PROGRESS record a live worker holds (its effect may then run twice)',
  })
  @ApiQuery({ name: 'reason', required: false, description: 'why, for the audit log' })
  @ApiOkResponse({ description: '{ forgotten: true, previous: IdempotencyRecord }' })
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
    if (!(await this.idempotency.forget(key, { scope }))) {
      throw new NotFoundException(`no idempotency record for ${scope}:${key}`);
    }
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
