import { MigrationInterface, QueryRunner } from 'typeorm';
import { ADDRESS_LOCK_CLASS } from '../../suppression/address-lock.util';

/** A history event as `historyEvent` (mail-ledger.repository.ts) builds it, from `fields`. */
const event = (fields: string) =>
  `jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('at', now(), ${fields})))`;

/**
 * The stamp before an SES call in one round trip instead of a transaction of seven statements
 * (`MailLedgerRepository.markSesCall`, `claimAndStamp`). PL/pgSQL gives each statement its own
 * snapshot, so the suppression list is read after the address locks are held, as before.
 *
 * - `mail_lock_address_keys(keys, deadline)`: the shared advisory lock of each address key
 *   (`ADDRESS_LOCK_CLASS`), one by one in lock-id order as `lockAddressKeys` takes them (so stamps
 *   and suppressions that lock overlapping sets cannot deadlock), `lock_timeout` reset before each
 *   wait to what is left until `deadline`; past it, an exception (the caller's whole statement
 *   rolls back).
 * - `mail_stamp_ses_call`: the stamp of an attempt that owns its pending row.
 * - `mail_claim_and_stamp`: a first send whose rate slot is already held: the row is inserted
 *   stamped (or `suppressed` when every recipient is), unless the key exists (`exists`).
 */
export class AddMailStampFunction1764800000000 implements MigrationInterface {
  name = 'AddMailStampFunction1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION mail_lock_address_keys(p_keys text[], p_deadline timestamptz)
      RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        lock_id integer;
      BEGIN
        FOR lock_id IN SELECT DISTINCT hashtext(k) FROM unnest(p_keys) AS k ORDER BY 1 LOOP
          PERFORM mail_check_stamp_deadline(p_deadline);
          PERFORM set_config('lock_timeout',
            greatest(1, floor(extract(epoch FROM p_deadline - clock_timestamp()) * 1000))::bigint || 'ms', true);
          PERFORM pg_advisory_xact_lock_shared(${ADDRESS_LOCK_CLASS}, lock_id);
        END LOOP;
        PERFORM mail_check_stamp_deadline(p_deadline);
        PERFORM set_config('lock_timeout',
          greatest(1, floor(extract(epoch FROM p_deadline - clock_timestamp()) * 1000))::bigint || 'ms', true);
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION mail_check_stamp_deadline(p_deadline timestamptz)
      RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
      BEGIN
        IF clock_timestamp() >= p_deadline THEN
          RAISE EXCEPTION 'the stamp took longer than its budget';
        END IF;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION mail_stamp_ses_call(
        p_key text, p_token uuid, p_recipients text[], p_keys text[], p_budget_ms integer
      ) RETURNS TABLE (outcome text, suppressed text[]) LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        deadline timestamptz := clock_timestamp() + p_budget_ms * interval '1 millisecond';
        blocked text[];
        blocked_recipients text[];
      BEGIN
        PERFORM mail_lock_address_keys(p_keys, deadline);
        SELECT ARRAY(SELECT email FROM mail_suppressions WHERE email = ANY(p_keys)) INTO blocked
          FROM mail_ledger
         WHERE idempotency_key = p_key AND claim_token = p_token AND status = 'pending'
           FOR UPDATE;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'not-owned'::text, NULL::text[];
          RETURN;
        END IF;
        blocked_recipients := ARRAY(
          SELECT r FROM unnest(p_recipients, p_keys) AS u(r, k) WHERE k = ANY(blocked));
        IF cardinality(blocked_recipients) = cardinality(p_recipients) THEN
          UPDATE mail_ledger
             SET status = 'suppressed', updated_at = now(),
                 history = history || ${event(`'event', 'suppressed-before-ses', 'attempt', attempts, 'suppressed', to_jsonb(blocked_recipients)`)}
           WHERE idempotency_key = p_key;
          RETURN QUERY SELECT 'suppressed'::text, blocked_recipients;
          RETURN;
        END IF;
        PERFORM mail_check_stamp_deadline(deadline);
        UPDATE mail_ledger
           SET ses_called_at = now(), updated_at = now(),
               history = CASE WHEN cardinality(blocked_recipients) = 0 THEN history
                              ELSE history || ${event(`'event', 'recipients-suppressed-before-ses', 'attempt', attempts, 'suppressed', to_jsonb(blocked_recipients)`)} END
         WHERE idempotency_key = p_key;
        RETURN QUERY SELECT 'stamped'::text, blocked_recipients;
      END
      $fn$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION mail_claim_and_stamp(
        p_key text, p_token uuid, p_recipients text[], p_keys text[], p_sender text, p_subject text,
        p_message jsonb, p_content_hash text, p_budget_ms integer
      ) RETURNS TABLE (outcome text, suppressed text[]) LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        deadline timestamptz := clock_timestamp() + p_budget_ms * interval '1 millisecond';
        blocked_recipients text[];
        all_blocked boolean;
      BEGIN
        PERFORM mail_lock_address_keys(p_keys, deadline);
        blocked_recipients := ARRAY(
          SELECT r FROM unnest(p_recipients, p_keys) AS u(r, k)
           WHERE EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.email = k));
        all_blocked := cardinality(blocked_recipients) = cardinality(p_recipients);
        PERFORM mail_check_stamp_deadline(deadline);
        INSERT INTO mail_ledger (idempotency_key, status, recipients, sender, subject, message, content_hash,
                                 claim_token, history, ses_called_at)
        VALUES (p_key, CASE WHEN all_blocked THEN 'suppressed' ELSE 'pending' END, p_keys, p_sender, p_subject,
                p_message, p_content_hash, p_token,
                ${event(`'event', CASE WHEN all_blocked THEN 'suppressed' ELSE 'pending' END, 'attempt', 1,
                  'suppressed', CASE WHEN cardinality(blocked_recipients) > 0 THEN to_jsonb(blocked_recipients) END`)},
                CASE WHEN all_blocked THEN NULL ELSE now() END)
        ON CONFLICT (idempotency_key) DO NOTHING;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'exists'::text, NULL::text[];
          RETURN;
        END IF;
        RETURN QUERY SELECT CASE WHEN all_blocked THEN 'suppressed' ELSE 'stamped' END, blocked_recipients;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'DROP FUNCTION IF EXISTS mail_claim_and_stamp(text, uuid, text[], text[], text, text, jsonb, text, integer)',
    );
    await queryRunner.query(
      'DROP FUNCTION IF EXISTS mail_stamp_ses_call(text, uuid, text[], text[], integer)',
    );
    await queryRunner.query('DROP FUNCTION IF EXISTS mail_lock_address_keys(text[], timestamptz)');
    await queryRunner.query('DROP FUNCTION IF EXISTS mail_check_stamp_deadline(timestamptz)');
  }
}
