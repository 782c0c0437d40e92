import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { queryInteger } from '../common/pagination';
import { ZodValidationPipe } from '../common/zod-validation.pipe';
import { ADMIN_QUEUES, AdminQueue, DeadLetter, QueueAdminService, QueueStatus } from './queue-admin.service';

const queueParam = new ZodValidationPipe(z.enum(ADMIN_QUEUES));
const peekQuery = new ZodValidationPipe(z.strictObject({ limit: queryInteger(1, 100).default(10) }));
const redriveBody = new ZodValidationPipe(
  z.strictObject({ max: z.number().int().min(1).max(10_000).default(1000) }).default({ max: 1000 }),
);
const queueDoc = { name: 'queue', enum: ADMIN_QUEUES };

@ApiTags('admin: queues')
@AdminOnly()
@Controller('admin/queues')
export class QueuesAdminController {
  constructor(private readonly queues: QueueAdminService) {}

  @Get()
  @ApiOperation({ summary: 'Depth and in-flight count of every queue and its dead-letter queue' })
  async list(): Promise<{ items: QueueStatus[] }> {
    return { items: await this.queues.list() };
  }

  @Get(':queue/dead-letters')
  @ApiOperation({ summary: 'Peek dead letters (not consumed)' })
  @ApiParam(queueDoc)
  @ApiQuery({ name: 'limit', required: false, description: '1–100, default 10', example: 10 })
  @ApiBadRequestResponse({ description: 'unknown queue or invalid query (details per field)' })
  async peek(
    @Param('queue', queueParam) queue: AdminQueue,
    @Query(peekQuery) query: { limit: number },
  ): Promise<{ items: DeadLetter[] }> {
    return { items: await this.queues.peekDeadLetters(queue, query.limit) };
  }

  @Post(':queue/redrive')
  @HttpCode(200)
  @ApiOperation({ summary: 'Move dead letters back to the source queue (audited)' })
  @ApiParam(queueDoc)
  @ApiBody({
    required: false,
    description: 'JSON; optional',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: { max: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 } },
    },
  })
  @ApiBadRequestResponse({ description: 'unknown queue or invalid body (details per field)' })
  async redrive(
    @Param('queue', queueParam) queue: AdminQueue,
    @Body(redriveBody) body: { max: number },
    @Admin() actor: string,
  ): Promise<{ moved: number }> {
    return { moved: await this.queues.redrive(queue, body.max, actor) };
  }
}
