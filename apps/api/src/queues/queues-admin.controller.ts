import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { ZodValidationPipe } from '../common/zod-validation.pipe';
import { ADMIN_QUEUES, AdminQueue, DeadLetter, QueueAdminService, QueueStatus } from './queue-admin.service';

const queueParam = new ZodValidationPipe(z.enum(ADMIN_QUEUES));
const peekQuery = new ZodValidationPipe(
  z.object({ limit: z.coerce.number().int().min(1).max(100).default(10) }),
);
const redriveBody = new ZodValidationPipe(
  z.object({ max: z.coerce.number().int().min(1).max(10_000).default(1000) }).default({ max: 1000 }),
);

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
  async peek(
    @Param('queue', queueParam) queue: AdminQueue,
    @Query(peekQuery) query: { limit: number },
  ): Promise<{ items: DeadLetter[] }> {
    return { items: await this.queues.peekDeadLetters(queue, query.limit) };
  }

  @Post(':queue/redrive')
  @HttpCode(200)
  @ApiOperation({ summary: 'Move dead letters back to the source queue (audited)' })
  async redrive(
    @Param('queue', queueParam) queue: AdminQueue,
    @Body(redriveBody) body: { max: number },
    @Admin() actor: string,
  ): Promise<{ moved: number }> {
    return { moved: await this.queues.redrive(queue, body.max, actor) };
  }
}
