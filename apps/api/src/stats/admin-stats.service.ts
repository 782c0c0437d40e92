import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { MailLedgerService, MailLedgerStatus } from '@once/mail';
import { APP_CONFIG, dedupKeyPrefix, DedupStatsService, ScopeDuplicateStats } from '@once/platform';
import { ClickSummary, ClickSummaryQuery, ClickSummaryService } from '@once/tracking';
import { DataSource } from 'typeorm';
import { ApiConfig } from '../config/api.config';
import { QueueAdminService, QueueStatus } from '../queues/queue-admin.service';

/** Live dedup records of one scope, and the expired ones waiting for the scheduler's purge. */
export interface ScopeRecordCounts {
  scope: string;
  inProgress: number;
  completed: number;
  expired: number;
}

export interface MailCounts {
  /** By effective status, as `GET /admin/mail?status=` lists them. */
  byStatus: Record<MailLedgerStatus, number>;
  total: number;
}

/** What `GET /admin/stats` answers. */
export interface AdminStats {
  generatedAt: string;
  /** Duplicates turned away per dedup scope, by cause, counted by every worker (Redis). */
  duplicates: ScopeDuplicateStats[];
  /**
   * Dedup records per scope and state (Postgres `dedup_records`). Scopes of DEDUP_REDIS_ONLY_SCOPES
   * (`send-email` by default) keep theirs in Redis and are not counted: the mail ledger is their record.
   */
  dedupRecords: ScopeRecordCounts[];
  mail: MailCounts;
  clicks: ClickSummary;
  /** Queue and dead-letter depths; `null` when SQS could not be asked. */
  queues: QueueStatus[] | null;
}

/** Gathers the operator's overview from Redis, Postgres and SQS in parallel. */
@Injectable()
export class AdminStatsService {
  private readonly logger = new Logger(AdminStatsService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: ApiConfig,
    private readonly duplicates: DedupStatsService,
    private readonly clicks: ClickSummaryService,
    private readonly queues: QueueAdminService,
    private readonly ledger: MailLedgerService,
  ) {}

  async collect(clicks: ClickSummaryQuery): Promise<AdminStats> {
    const [duplicates, dedupRecords, mail, clickSummary, queues] = await Promise.all([
      this.duplicates.duplicates(),
      this.dedupRecords(),
      this.mailCounts(),
      this.clicks.summarize(clicks),
      this.queues.list().catch((error: unknown) => {
        this.logger.warn({ msg: 'queue depths unavailable for stats', error: (error as Error).message });
        return null;
      }),
    ]);
    return {
      generatedAt: new Date().toISOString(),
      duplicates,
      dedupRecords,
      mail,
      clicks: clickSummary,
      queues,
    };
  }

  private async dedupRecords(): Promise<ScopeRecordCounts[]> {
    const prefix = dedupKeyPrefix(this.config).replace(/[\\%_]/g, (char) => `\\${char}`);
    const rows: Array<{ scope: string; in_progress: number; completed: number; expired: number }> =
      await this.dataSource.query(
        `SELECT scope,
                (count(*) FILTER (WHERE expires_at > now() AND state = 'IN_PROGRESS'))::int AS in_progress,
                (count(*) FILTER (WHERE expires_at > now() AND state = 'COMPLETED'))::int AS completed,
                (count(*) FILTER (WHERE expires_at <= now()))::int AS expired
           FROM dedup_records
          WHERE key LIKE $1
          GROUP BY scope
          ORDER BY scope`,
        [`${prefix}%`],
      );
    return rows.map((row) => ({
      scope: row.scope,
      inProgress: row.in_progress,
      completed: row.completed,
      expired: row.expired,
    }));
  }

  private async mailCounts(): Promise<MailCounts> {
    const byStatus = await this.ledger.countByStatus();
    return { byStatus, total: Object.values(byStatus).reduce((sum, n) => sum + n, 0) };
  }
}
