import { MigrationInterface, QueryRunner } from 'typeorm';
import { ADDRESS_LOCK_CLASS } from '../../suppression/address-lock.util';

/**
 * `mail_stamp_ses_call`: the stamp before each SES call (see `MailLedgerRepository.markSesCall`) in
 * one round trip instead of a transaction of seven statements. PL/pgSQL gives each statement its
 * own snapshot, so the suppression list is read after the address locks are held, as before. The
 * budget bounds every lock wait (lock_timeout is reset to what is left before each one) and is
 * checked between steps; an exception rolls the whole stamp back. Address keys are locked one by
 * one in lock-id order (`ADDRESS_LOCK_CLASS`, as `lockAddressKeys`), so stamps and suppressions that
 * lock overlapping sets cannot deadlock. History events have the shape `historyEvent` builds.
 */
export class AddMailStampFunction1764800000000 implements MigrationInterface {
  name = 'AddMailStampFunction1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION mail_stamp_ses_call(
        p_key text, p_token uuid, p_recipients text[], p_keys text[], p_budget_ms integer
      ) RETURNS TABLE (outcome text, suppressed text[]) LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        deadline timestamptz := clock_timestamp() + p_budget_ms * interval '1 millisecond';
        lock_id integer;
        blocked text[];
        blocked_recipients text[];
        left_ms integer;
      BEGIN
        FOR lock_id IN SELECT DISTINCT hashtext(k) FROM unnest(p_keys) AS k ORDER BY 1 LOOP
          left_ms := floor(extract(epoch FROM deadline - clock_timestamp()) * 1000);
          IF left_ms <= 0 THEN
            RAISE EXCEPTION 'the stamp took longer than its % ms budget', p_budget_ms;
          END IF;
          PERFORM set_config('lock_timeout', left_ms || 'ms', true);
          PERFORM pg_advisory_xact_lock_shared(${ADDRESS_LOCK_CLASS}, lock_id);
        END LOOP;
        left_ms := floor(extract(epoch FROM deadline - clock_timestamp()) * 1000);
        IF left_ms <= 0 THEN
          RAISE EXCEPTION 'the stamp took longer than its % ms budget', p_budget_ms;
        END IF;
        PERFORM set_config('lock_timeout', left_ms || 'ms', true);
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
                 history = history || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                   'at', now(), 'event', 'suppressed-before-ses', 'attempt', attempts,
                   'suppressed', to_jsonb(blocked_recipients))))
           WHERE idempotency_key = p_key;
          RETURN QUERY SELECT 'suppressed'::text, blocked_recipients;
          RETURN;
        END IF;
        IF clock_timestamp() >= deadline THEN
          RAISE EXCEPTION 'the stamp took longer than its % ms budget', p_budget_ms;
        END IF;
        UPDATE mail_ledger
           SET ses_called_at = now(), updated_at = now(),
               history = CASE WHEN cardinality(blocked_recipients) = 0 THEN history
                              ELSE history || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                                'at', now(), 'event', 'recipients-suppressed-before-ses', 'attempt', attempts,
                                'suppressed', to_jsonb(blocked_recipients)))) END
         WHERE idempotency_key = p_key;
        RETURN QUERY SELECT 'stamped'::text, blocked_recipients;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'DROP FUNCTION IF EXISTS mail_stamp_ses_call(text, uuid, text[], text[], integer)',
    );
  }
}
