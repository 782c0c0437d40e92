import {
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  Logger,
  NotFoundException,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import type { Response } from 'express';
import { ApiBadRequestResponse, ApiBody, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  InvalidMailLedgerCursorError,
  MailLedgerEntry,
  MailLedgerPage,
  MailLedgerService,
  MailResendNotAllowedError,
  MailResendTooEarlyError,
  MailSendResult,
} from '@once/mail';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { invalidCursor, paginationSchema } from '../common/pagination';
import { ZodValidationPipe } from '../common/zod-validation.pipe';

const STATUSES = ['pending', 'sent', 'failed', 'unknown', 'suppressed'] as const;
const listQuery = new ZodValidationPipe(
  paginationSchema.extend({
    status: z.enum(STATUSES).optional(),
    recipient: z.email().max(320).optional(),
  }),
);
const keyParam = new ZodValidationPipe(z.string().min(1).max(500));
const resendBody = new ZodValidationPipe(
  z.strictObject({ reason: z.string().max(500).optional() }).default({}),
);
const keyDoc = {
  name: 'key',
  description: 'the idempotency key of the mail (URL-encoded), 1–500 characters',
  example: 'daily-digest:2026-11-22:42',
};

@ApiTags('admin: mail')
@AdminOnly()
@Controller('admin/mail')
export class MailLedgerAdminController {
  private readonly logger = new Logger(MailLedgerAdminController.name);

  constructor(private readonly ledger: MailLedgerService) {}

  @Get()
  @ApiOperation({ summary: 'The send ledger, newest first; filter by status and recipient' })
  @ApiQuery({ name: 'status', required: false, enum: STATUSES, description: 'effective status' })
  @ApiQuery({
    name: 'recipient',
    required: false,
    description: 'an email address among the recipients',
    example: 'someone@example.com',
  })
  @ApiQuery({ name: 'limit', required: false, description: '1–200, default 50', example: 20 })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  @ApiBadRequestResponse({ description: 'invalid query (details per field)' })
  list(@Query(listQuery) query: z.infer<typeof listQuery.schema>): Promise<MailLedgerPage> {
    return this.ledger.list(query).catch((error: unknown) => {
      throw error instanceof InvalidMailLedgerCursorError ? invalidCursor() : error;
    });
  }

  @Get(':key')
  @ApiOperation({ summary: 'One ledger entry by idempotency key' })
  @ApiParam(keyDoc)
  async get(@Param('key', keyParam) key: string): Promise<MailLedgerEntry> {
    const entry = await this.ledger.get(key);
    if (!entry) throw new NotFoundException(`no mail with idempotency key ${key}`);
    return entry;
  }

  @Post(':key/resend')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Send a failed or unknown email again, deliberately (audited; may duplicate an unknown one)',
  })
  @ApiParam(keyDoc)
  @ApiBody({
    required: false,
    description: 'JSON; optional',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: { reason: { type: 'string', maxLength: 500, description: 'why, for the audit log' } },
    },
  })
  @ApiBadRequestResponse({ description: 'invalid key or body (details per field)' })
  async resend(
    @Param('key', keyParam) key: string,
    @Body(resendBody) body: { reason?: string },
    @Admin() actor: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<MailSendResult> {
    try {
      const result = await this.ledger.resend(key, { actor });
      this.logger.log({
        msg: 'audit: mail resent',
        actor,
        idempotencyKey: key,
        reason: body.reason,
        status: result.status,
      });
      return result;
    } catch (error) {
      if (error instanceof MailResendTooEarlyError) {
        const seconds = Math.max(1, Math.ceil((error.resendAllowedAt.getTime() - Date.now()) / 1000));
        response.setHeader('Retry-After', String(seconds));
      }
      if (error instanceof MailResendNotAllowedError) {
        throw error.currentStatus === 'missing'
          ? new NotFoundException(error.message)
          : new ConflictException(error.message);
      }
      throw error;
    }
  }
}
