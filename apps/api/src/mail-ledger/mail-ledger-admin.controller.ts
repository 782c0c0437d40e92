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
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  MailLedgerEntry,
  MailLedgerPage,
  MailLedgerService,
  MailResendNotAllowedError,
  MailResendTooEarlyError,
  MailSendResult,
} from '@once/mail';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { paginationSchema } from '../common/pagination';
import { ZodValidationPipe } from '../common/zod-validation.pipe';

const listQuery = new ZodValidationPipe(
  paginationSchema.extend({
    status: z.enum(['pending', 'sent', 'failed', 'unknown', 'suppressed']).optional(),
    recipient: z.email().optional(),
  }),
);
const keyParam = new ZodValidationPipe(z.string().min(1).max(500));
const resendBody = new ZodValidationPipe(z.object({ reason: z.string().max(500).optional() }).default({}));

@ApiTags('admin: mail')
@AdminOnly()
@Controller('admin/mail')
export class MailLedgerAdminController {
  private readonly logger = new Logger(MailLedgerAdminController.name);

  constructor(private readonly ledger: MailLedgerService) {}

  @Get()
  @ApiOperation({ summary: 'The send ledger, newest first; filter by status and recipient' })
  list(@Query(listQuery) query: z.infer<typeof listQuery.schema>): Promise<MailLedgerPage> {
    return this.ledger.list(query);
  }

  @Get(':key')
  @ApiOperation({ summary: 'One ledger entry by idempotency key' })
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
