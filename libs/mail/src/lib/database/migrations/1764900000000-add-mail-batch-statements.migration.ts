import { MigrationInterface, QueryRunner } from 'typeorm';
import { ADDRESS_LOCK_CLASS } from '../../suppression/address-lock.util';

/** A history event as `historyEvent` (mail-ledger.repository.ts) builds it, from `fields`. */
const event = (fields: string) =>
  `jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('at', now(), ${fields})))`;

/**
 * `mail_claim_and_stamp_many(items, budget)`: the first sends of concurrent callers (a receive
 * batch's) in one statement, each as `mail_claim_and_stamp` does it, except that it never waits for
 * an address lock: an item whose recipients' shared locks are not all free at once (a suppression
 * of one of them is being recorded) is left alone as `busy`, for the caller to send the one-item
 * way, so it holds back neither the others nor a suppression (and a batch cannot deadlock). The
 * others are inserted stamped (`stamped`), `suppressed` when every recipient is, or left alone when
 * their key exists (`exists`; a key twice in one call: the second is `exists`; items are inserted in key order). `items`: a JSON
 * array of `{ key, token, recipients, keys, sender, subject, message, contentHash }`; one row per
 * item, `idx` from 1. Past the budget (an insert waits for a concurrent one of the same key) the
 * whole statement rolls back.
 */
export class AddMailBatchStatements1764900000000 implements MigrationInterface {
  name = 'AddMailBatchStatements1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION mail_claim_and_stamp_many(p_items jsonb, p_budget_ms integer)
      RETURNS TABLE (idx integer, outcome text, suppressed text[]) LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        deadline timestamptz := clock_timestamp() + p_budget_ms * interval '1 millisecond';
        item jsonb;
        pos bigint;
        item_recipients text[];
        item_keys text[];
        blocked_recipients text[];
        all_blocked boolean;
        lock_id integer;
        locked boolean;
      BEGIN
        -- In key order, so two batches that insert overlapping keys wait for each other one way only.
        FOR item, pos IN SELECT e, o FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(e, o)
                          ORDER BY e->>'key', o LOOP
          idx := pos;
          item_recipients := ARRAY(SELECT jsonb_array_elements_text(item->'recipients'));
          item_keys := ARRAY(SELECT jsonb_array_elements_text(item->'keys'));
          locked := true;
          FOR lock_id IN SELECT DISTINCT hashtext(k) FROM unnest(item_keys) AS k ORDER BY 1 LOOP
            IF NOT pg_try_advisory_xact_lock_shared(${ADDRESS_LOCK_CLASS}, lock_id) THEN
              locked := false;
              EXIT;
            END IF;
          END LOOP;
          IF NOT locked THEN
            outcome := 'busy';
            suppressed := NULL;
            RETURN NEXT;
            CONTINUE;
          END IF;
          blocked_recipients := ARRAY(
            SELECT r FROM unnest(item_recipients, item_keys) AS u(r, k)
             WHERE EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.email = k));
          all_blocked := cardinality(blocked_recipients) = cardinality(item_recipients);
          PERFORM mail_check_stamp_deadline(deadline);
          -- An insert waits for a concurrent one of the same key: within what is left of the budget.
          PERFORM set_config('lock_timeout',
            greatest(1, floor(extract(epoch FROM deadline - clock_timestamp()) * 1000))::bigint || 'ms', true);
          INSERT INTO mail_ledger (idempotency_key, status, recipients, sender, subject, message, content_hash,
                                   claim_token, history, ses_called_at)
          VALUES (item->>'key', CASE WHEN all_blocked THEN 'suppressed' ELSE 'pending' END, item_keys,
                  item->>'sender', item->>'subject', item->'message', item->>'contentHash', (item->>'token')::uuid,
                  ${event(`'event', CASE WHEN all_blocked THEN 'suppressed' ELSE 'pending' END, 'attempt', 1,
                    'suppressed', CASE WHEN cardinality(blocked_recipients) > 0 THEN to_jsonb(blocked_recipients) END`)},
                  CASE WHEN all_blocked THEN NULL ELSE now() END)
          ON CONFLICT (idempotency_key) DO NOTHING;
          IF NOT FOUND THEN
            outcome := 'exists';
            suppressed := NULL;
          ELSE
            outcome := CASE WHEN all_blocked THEN 'suppressed' ELSE 'stamped' END;
            suppressed := blocked_recipients;
          END IF;
          RETURN NEXT;
        END LOOP;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP FUNCTION IF EXISTS mail_claim_and_stamp_many(jsonb, integer)');
  }
}
