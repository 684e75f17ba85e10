-- Callbacks on record, one row per inbox batch: the i-th callback of a batch is the
-- i-th element of each array (payment_ids holds null for a callback without idEntity).
-- A batch costs one heap tuple, one primary-key entry and one append to the GIN index's
-- pending list, where a row per callback cost a tuple and two B-tree entries at random
-- places each (BENCHMARKS.md, session 5). The pending list is merged by
-- `store::callbacks::merge_pending` every few seconds, off the ingest path; its limit
-- is set high so that ingest does not merge it inline unless that task falls behind.
--
-- The `callbacks` table keeps the rows written before this migration and, during a
-- rolling deploy, those written by older binaries; readers take both.
create table callback_batches (
    id bigint generated always as identity primary key,
    merchant_code text not null,
    kinds text[] not null,
    payment_ids text[] not null,
    outcomes text[] not null,
    bodies jsonb[] not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (cardinality(kinds) = cardinality(payment_ids)
       and cardinality(kinds) = cardinality(outcomes)
       and cardinality(kinds) = cardinality(bodies)),
    check (outcomes <@ array['accepted', 'ignored'])
);
create index callback_batches_by_payment on callback_batches using gin (payment_ids)
    with (gin_pending_list_limit = 65536);
create index callback_batches_ignored on callback_batches (merchant_code, id)
    where 'ignored' = any (outcomes);

-- Every callback on record, one row each, from both tables (for operators and tests;
-- the service's own readers query the tables through their indexes).
create view callbacks_on_record as
select c.merchant_code, c.kind, c.payment_id, c.outcome, c.body, c.created_at
  from callbacks c
union all
select b.merchant_code, t.kind, t.payment_id, t.outcome, t.body, b.created_at
  from callback_batches b,
       unnest(b.kinds, b.payment_ids, b.outcomes, b.bodies) as t(kind, payment_id, outcome, body);
