-- Payments mirrored from the platform: extracted columns plus the platform's document verbatim.
create table payments (
    merchant_code text not null,
    kind text not null check (kind in ('payin', 'payout')),
    id text not null,
    status text,
    final boolean not null default false,
    amount numeric,
    currency_code text,
    fee_amount numeric,
    fee_currency_code text,
    failure_code text,
    failure_message text,
    failed_at text,
    payment_method_code text,
    is_test boolean,
    platform_created_at text,
    platform_processed_at text,
    platform jsonb,
    first_seen_at timestamptz not null default now(),
    synced_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (merchant_code, kind, id)
);
create index payments_by_update on payments (merchant_code, kind, updated_at, id);

-- Every distinct status observed for a payment, oldest first.
create table payment_status_history (
    seq bigint generated always as identity primary key,
    merchant_code text not null,
    kind text not null,
    payment_id text not null,
    status text not null,
    observed_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (merchant_code, kind, payment_id) references payments (merchant_code, kind, id)
);
create index payment_status_history_by_payment on payment_status_history (merchant_code, kind, payment_id, seq);

-- The sync queue: one row per tracked payment. state idle | pending | running | dead.
-- rerun_priority is set when a sync is requested while a fetch is in flight: exactly one more fetch follows.
create table sync_jobs (
    merchant_code text not null,
    kind text not null,
    payment_id text not null,
    state text not null check (state in ('idle', 'pending', 'running', 'dead')),
    priority smallint not null,
    run_at timestamptz not null default now(),
    attempts integer not null default 0,
    last_error text,
    rerun_priority smallint,
    claim_token uuid,
    lease_until timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (merchant_code, kind, payment_id),
    foreign key (merchant_code, kind, payment_id) references payments (merchant_code, kind, id)
);
create index sync_jobs_due on sync_jobs (merchant_code, priority, run_at) where state = 'pending';
create index sync_jobs_leased on sync_jobs (lease_until) where state = 'running';

-- The callback inbox: every callback received, as received. outcome accepted | ignored.
create table callbacks (
    id bigint generated always as identity primary key,
    merchant_code text not null,
    kind text not null,
    payment_id text,
    outcome text not null check (outcome in ('accepted', 'ignored')),
    body jsonb not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- API tokens for /v1: stored as SHA-256 hashes; only the newest token of an account is active.
create table api_tokens (
    id bigint generated always as identity primary key,
    account text not null,
    token_hash text not null unique,
    permissions text[] not null,
    active boolean not null default true,
    last_used_at timestamptz,
    use_count bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index api_tokens_one_active_per_account on api_tokens (account) where active;
