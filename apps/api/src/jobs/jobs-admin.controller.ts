import { Body, Controller, HttpCode, Logger, Param, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { JOB_NAMES, JobName, JobPublisher, PublishResult } from '@once/platform';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { ZodValidationPipe } from '../common/zod-validation.pipe';

const jobParam = new ZodValidationPipe(z.enum(JOB_NAMES));
const triggerBody = new ZodValidationPipe(z.object({ slot: z.iso.datetime({ offset: true }) }));

@ApiTags('admin: jobs')
@AdminOnly()
@Controller('admin/jobs')
export class JobsAdminController {
  private readonly logger = new Logger(JobsAdminController.name);

  constructor(private readonly publisher: JobPublisher) {}

  @Post(':job/trigger')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Enqueue a scheduled job for a given slot; idempotent like the cron (a slot already enqueued is a duplicate)',
  })
  async trigger(
    @Param('job', jobParam) job: JobName,
    @Body(triggerBody) body: { slot: string },
    @Admin() actor: string,
  ): Promise<PublishResult> {
    const result = await this.publisher.publish(job, new Date(body.slot), 'manual', actor);
    this.logger.log({
      msg: 'audit: job triggered',
      actor,
      job,
      slot: body.slot,
      status: result.status,
      eventId: result.eventId,
    });
    return result;
  }
}
