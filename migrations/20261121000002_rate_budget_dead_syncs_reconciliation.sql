-- The platform's rate limit is per merchant, shared by every replica: the send times of
-- the last max_rps requests, on the database's clock, plus a pause after a 429 or 403/406.
create table platform_budget (
    merchant_code text primary key,
    sent timestamptz[] not null default '{}',
    paused_until timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- When a failing sync started failing (bounds retries by age), and when a payment that is
-- not final is due for a reconciliation fetch without a callback.
alter table sync_jobs
    add column failing_since timestamptz,
    add column reconcile_at timestamptz;
create index sync_jobs_reconcile on sync_jobs (reconcile_at) where state = 'idle' and reconcile_at is not null;
create index sync_jobs_dead on sync_jobs (merchant_code, updated_at) where state = 'dead';
