import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { SqsService } from '@ssut/nestjs-sqs';
import { APP_CONFIG, JobMessage, User } from '@once/platform';
import { LinkBuilder } from '@once/tracking';
import { DataSource, MoreThan } from 'typeorm';
import { WorkerConfig } from '../config/worker.config';
import { EMAIL_PRODUCER } from '../sqs/worker-queues';
import { jobEmail } from './job-email.template';

/** Turns one job into one send-email message per subscribed user, page by page. */
@Injectable()
export class JobFanoutService {
  private readonly logger = new Logger(JobFanoutService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly sqs: SqsService,
    @Inject(APP_CONFIG) private readonly config: WorkerConfig,
    private readonly links: LinkBuilder,
  ) {}

  /** Returns how many send-email messages were enqueued. */
  async fanOut(job: JobMessage): Promise<number> {
    const users = this.dataSource.getRepository(User);
    let lastId = '0';
    let enqueued = 0;
    for (;;) {
      const page = await users.find({
        where: { subscribed: true, id: MoreThan(lastId) },
        order: { id: 'ASC' },
        take: this.config.FANOUT_PAGE_SIZE,
      });
      if (page.length === 0) break;
      await this.sqs.send(
        EMAIL_PRODUCER,
        page.map((user) => ({ id: `u${user.id}`, body: jobEmail(job, user, this.links) })),
      );
      enqueued += page.length;
      lastId = page[page.length - 1].id;
      this.logger.debug({ msg: 'fan-out page enqueued', eventId: job.eventId, enqueued });
    }
    return enqueued;
  }
}
