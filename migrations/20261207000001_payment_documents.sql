-- Each payment's document (SPEC §2) as the API serves it, kept as text beside the row,
-- so that a read by id or a page is the stored bytes with the sync job's state
-- spliced in, not twenty columns decoded and encoded again (BENCHMARKS.md, stop 26).
--
-- `document` is the payment's JSON object without `sync` (that is the sync job's,
-- which changes with every callback; the reader appends it as the object's last
-- member). The trigger computes it from the row itself on every insert and on every
-- update of a column it shows, whichever binary or hand wrote the row: an older
-- release during a rolling deploy, or an operator's SQL, never leaves it stale. The
-- format is the one the service's serialiser writes (a test compares the two byte for
-- byte); a null document (a row written before this migration, until the backfill
-- reaches it) is read the old way.

alter table payments add column document text;

-- A time as the API writes it: RFC 3339 in UTC with `Z`, and as many fraction digits
-- as it has (none, 3 or 6), as chrono's serialiser does; `null` for none.
create function paymirror_json_time(t timestamptz) returns text
language sql stable parallel safe as $$
  select case when t is null then 'null' else
    '"' || to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || case
         when extract(microseconds from t)::bigint % 1000000 = 0 then ''
         when extract(microseconds from t)::bigint % 1000 = 0
           then to_char(t at time zone 'UTC', '.MS')
         else to_char(t at time zone 'UTC', '.US')
       end
    || 'Z"'
  end
$$;

create function paymirror_payment_document() returns trigger
language plpgsql as $$
begin
  new.document := concat(
    '{"kind":', to_json(new.kind),
    ',"id":', to_json(new.id),
    ',"merchantCode":', to_json(new.merchant_code),
    ',"status":', coalesce(to_json(new.status)::text, 'null'),
    ',"final":', case when new.final then 'true' else 'false' end,
    ',"amount":', coalesce(to_json(new.amount::text)::text, 'null'),
    ',"currencyCode":', coalesce(to_json(new.currency_code)::text, 'null'),
    ',"fee":', case when new.fee_amount is null then 'null' else concat(
        '{"amount":', to_json(new.fee_amount::text),
        ',"currencyCode":', coalesce(to_json(new.fee_currency_code)::text, 'null'), '}') end,
    ',"failureReason":',
      case when new.failure_code is null and new.failure_message is null then 'null' else concat(
        '{"code":', coalesce(to_json(new.failure_code)::text, 'null'),
        ',"message":', coalesce(to_json(new.failure_message)::text, 'null'),
        ',"failedAt":', coalesce(to_json(new.failed_at)::text, 'null'), '}') end,
    ',"paymentMethodCode":', coalesce(to_json(new.payment_method_code)::text, 'null'),
    ',"isTest":', case when new.is_test then 'true' when not new.is_test then 'false' else 'null' end,
    ',"createdAt":', coalesce(to_json(new.platform_created_at)::text, 'null'),
    ',"processedAt":', coalesce(to_json(new.platform_processed_at)::text, 'null'),
    ',"firstSeenAt":', paymirror_json_time(new.first_seen_at),
    ',"syncedAt":', paymirror_json_time(new.synced_at),
    ',"updatedAt":', paymirror_json_time(new.updated_at),
    ',"platform":', coalesce(new.platform::text, 'null'),
    '}');
  return new;
end
$$;

-- Not on `position` alone: publishing a change moves the row in commit order without
-- touching what the document shows.
create trigger payments_document
  before insert or update of kind, id, merchant_code, status, final, amount, currency_code,
    fee_amount, fee_currency_code, failure_code, failure_message, failed_at,
    payment_method_code, is_test, platform_created_at, platform_processed_at, platform,
    first_seen_at, synced_at, updated_at, document
  on payments for each row execute function paymirror_payment_document();

-- The rows written before this migration, for the backfill (`store::documents`) to
-- find without reading the table; empty once it is done.
create index payments_without_document on payments (merchant_code, kind, id)
  where document is null;
