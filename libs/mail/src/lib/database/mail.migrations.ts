import { MailLedgerRecord } from '../ledger/mail-ledger.entity';
import { SnsMessageReceipt } from '../sns/sns-message-receipt.entity';
import { MailSuppression } from '../suppression/mail-suppression.entity';
import { CreateMailTables1763920000000 } from './migrations/1763920000000-create-mail-tables.migration';
import { AddMailLedgerSesCalledAt1763940000000 } from './migrations/1763940000000-add-mail-ledger-ses-called-at.migration';
import { AddMailStampFunction1764800000000 } from './migrations/1764800000000-add-mail-stamp-function.migration';
import { AddMailBatchStatements1764900000000 } from './migrations/1764900000000-add-mail-batch-statements.migration';

/** Entities and migrations the apps register for @once/mail. */
export const MAIL_ENTITIES = [MailLedgerRecord, MailSuppression, SnsMessageReceipt];
export const MAIL_MIGRATIONS = [
  CreateMailTables1763920000000,
  AddMailLedgerSesCalledAt1763940000000,
  AddMailStampFunction1764800000000,
  AddMailBatchStatements1764900000000,
];
