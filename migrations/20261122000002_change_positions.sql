-- Commit-ordered positions for the change feed (status history) and the payment lists.
-- A writer takes its position under an advisory lock at the very end of its
-- transaction, so positions become visible in the order they were taken: a reader's
-- cursor never passes a change that is still to commit.
-- The defaults give rows written by the previous release a position too (rolling deploy).
create sequence change_positions;
create sequence payment_positions;

alter table payment_status_history
    add column previous_status text,
    add column position bigint;
update payment_status_history h set previous_status = (
    select p.status from payment_status_history p
    where p.merchant_code = h.merchant_code and p.kind = h.kind and p.payment_id = h.payment_id
      and p.seq < h.seq
    order by p.seq desc limit 1);
update payment_status_history h set position = o.n
    from (select seq, row_number() over (order by seq) as n from payment_status_history) o
    where h.seq = o.seq;
select setval('change_positions', coalesce((select max(position) from payment_status_history), 0) + 1, false);
alter table payment_status_history alter column position set default nextval('change_positions');
alter table payment_status_history alter column position set not null;
create unique index payment_status_history_by_position on payment_status_history (merchant_code, position);

alter table payments add column position bigint;
update payments p set position = o.n
    from (select merchant_code, kind, id, row_number() over (order by updated_at, id) as n from payments) o
    where p.merchant_code = o.merchant_code and p.kind = o.kind and p.id = o.id;
select setval('payment_positions', coalesce((select max(position) from payments), 0) + 1, false);
alter table payments alter column position set default nextval('payment_positions');
alter table payments alter column position set not null;
create index payments_by_position on payments (merchant_code, kind, position);
