import { BadRequestException, Body, Controller, HttpCode, Inject, Logger, Param, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import {
  APP_CONFIG,
  checkTriggerSlot,
  JOB_NAMES,
  JobName,
  JobPublisher,
  PublishResult,
  type SchedulesEnv,
} from '@once/platform';
import { z } from 'zod';
import { Admin, AdminOnly } from '../admin-auth/admin.decorator';
import { ZodValidationPipe } from '../common/zod-validation.pipe';

const jobParam = new ZodValidationPipe(z.enum(JOB_NAMES));
const triggerBody = new ZodValidationPipe(z.strictObject({ slot: z.iso.datetime({ offset: true }) }));

@ApiTags('admin: jobs')
@AdminOnly()
@Controller('admin/jobs')
export class JobsAdminController {
  private readonly logger = new Logger(JobsAdminController.name);

  constructor(
    private readonly publisher: JobPublisher,
    @Inject(APP_CONFIG) private readonly config: SchedulesEnv,
  ) {}

  @Post(':job/trigger')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Enqueue a scheduled job for a slot on its schedule (DIGEST_CRON/REMINDER_CRON in SCHEDULER_TIMEZONE) that has fallen due (400 with the neighbouring slots otherwise: an off-grid or future slot); idempotent per period like the cron (a period already enqueued is a duplicate)',
  })
  @ApiParam({ name: 'job', enum: JOB_NAMES })
  @ApiBody({
    description: 'JSON',
    schema: {
      type: 'object',
      required: ['slot'],
      additionalProperties: false,
      properties: {
        slot: { type: 'string', format: 'date-time', description: 'a due slot of the schedule, with offset' },
      },
    },
  })
  @ApiBadRequestResponse({ description: 'unknown job, invalid body, or a slot off the schedule or not due' })
  async trigger(
    @Param('job', jobParam) job: JobName,
    @Body(triggerBody) body: { slot: string },
    @Admin() actor: string,
  ): Promise<PublishResult> {
    const slot = new Date(body.slot);
    const check = checkTriggerSlot(job, slot, this.config);
    if (!check.ok) {
      const { ok: _ok, ...refusal } = check;
      this.logger.warn({
        msg: 'audit: job trigger refused',
        actor,
        job,
        slot: body.slot,
        reason: check.message,
      });
      throw new BadRequestException({ statusCode: 400, error: 'Bad Request', ...refusal });
    }
    const result = await this.publisher.publish(job, slot, 'manual', actor);
    this.logger.log({
      msg: 'audit: job triggered',
      actor,
      job,
      slot: body.slot,
      period: check.period,
      status: result.status,
      eventId: result.eventId,
    });
    return result;
  }
}
