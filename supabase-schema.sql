-- Realtime AI Backend: tables, indexes, row level security and the rtb_* functions that hold every
-- storage rule the postgres and supabase stores share (DESIGN §6), and the owner-only read access of
-- Supabase-signed-in users (DESIGN §10). Schema version 7 (see rtb_schema_version): 6 + the sessions whose owner
-- lease lapsed, for the periodic takeover sweep of cluster mode (rtb_list_lapsed_sessions). Version 6: 5 + seqs reserved ahead of
-- what is sent (sessions.seq_reserved, rtb_reserve_seqs, rtb_release_seqs: DESIGN §11, no seq ever reused) and
-- one fenced owner per live session (sessions.lease_*, rtb_acquire_session, rtb_renew_leases; appends, seq
-- reservations and ends refuse a stale epoch with SQLSTATE RTB01; an append that differs from a stored event
-- under the same seq is refused with RTB02). Version 5: 4 + remembered tool approvals (tool_approvals,
-- rtb_remember_approval, rtb_is_approval_remembered; DESIGN §13). Version 4: 3 + the summary queue's counts for
-- /metrics (rtb_summary_job_counts). Version 3: 2 + session owners (rtb_claim_session, rtb_list_sessions'
-- p_owner), per-user daily token usage (user_usage) and RLS policies.
--
-- Apply to any Postgres 15+ database:   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f supabase-schema.sql
-- or on Supabase: paste the whole file into Dashboard → SQL Editor → Run.
-- Idempotent: applying it again is harmless (if not exists / create or replace / drop policy if exists).
-- The server connects as the table owner (DATABASE_URL) or with the service-role key (SUPABASE_*):
-- both bypass row level security. Role authenticated (a Supabase-signed-in user) may only select its own
-- sessions and their events; anon gets nothing; neither can write or call an rtb_* function.

set client_min_messages = warning; -- keep re-runs quiet ("already exists, skipping")

create table if not exists public.sessions (
  id                  text primary key,
  owner               text null,
  status              text not null default 'active' check (status in ('active', 'ended')),
  started_at          timestamptz not null default now(),
  ended_at            timestamptz null,
  duration_ms         bigint null,
  summary             text null,
  summary_status      text not null default 'none' check (summary_status in ('none', 'pending', 'ready', 'failed')),
  summary_error       text null,
  summary_due_at      timestamptz null,
  summary_lease_owner text null,
  summary_lease_until timestamptz null,
  summary_attempts    integer not null default 0,
  version             integer not null default 0,
  last_seq            integer not null default 0,
  message_count       integer not null default 0,
  title               text null,
  open_turn_id        text null,
  metadata            jsonb not null default '{}'::jsonb,
  updated_at          timestamptz not null default now()
);

create table if not exists public.session_events (
  session_id text not null references public.sessions (id) on delete cascade,
  seq        integer not null check (seq > 0),
  type       text not null,
  turn_id    text null,
  payload    jsonb not null,
  created_at timestamptz not null default now(),
  primary key (session_id, seq)
);

-- Version 1 and 2 databases have the column already; kept for any older hand-made table.
alter table public.sessions add column if not exists owner text null;
-- Version 4: the highest seq handed out for numbering (sent or not); a restart numbers past it (DESIGN §11).
alter table public.sessions add column if not exists seq_reserved integer not null default 0;
-- Version 4: the instance that owns the live session, its fencing token (bumped by every acquisition) and expiry.
alter table public.sessions add column if not exists lease_instance text null;
alter table public.sessions add column if not exists lease_epoch integer not null default 0;
alter table public.sessions add column if not exists lease_until timestamptz null;

create table if not exists public.profiles (
  user_id     text primary key,
  name        text not null,
  email       text not null,
  plan        text not null default 'free',
  created_at  timestamptz not null default now(),
  preferences jsonb not null default '{}'::jsonb
);

insert into public.profiles (user_id, name, email, plan, created_at, preferences) values
  ('alice',   'Alice Martin', 'alice@example.com',   'pro',        '2024-01-15T09:30:00Z', '{"language": "en", "theme": "dark", "timezone": "Europe/Paris"}'),
  ('bob',     'Bob Chen',     'bob@example.com',     'free',       '2024-03-02T14:05:00Z', '{"language": "en", "theme": "light", "timezone": "America/New_York"}'),
  ('demo',    'Demo User',    'demo@example.com',    'team',       '2024-06-01T00:00:00Z', '{"language": "en", "theme": "system", "timezone": "UTC"}'),
  ('user-42', 'Grace Okafor', 'user-42@example.com', 'enterprise', '2023-11-20T17:45:00Z', '{"language": "fr", "theme": "dark", "timezone": "Africa/Lagos"}')
on conflict (user_id) do nothing;

-- Tokens per principal per UTC day (USER_DAILY_TOKEN_BUDGET), written only through rtb_add_usage.
create table if not exists public.user_usage (
  principal  text not null,
  day        date not null,
  tokens     bigint not null default 0,
  updated_at timestamptz not null default now(),
  primary key (principal, day)
);

-- "Always allow" tool approvals (DESIGN §13): a principal (or `session:<id>` with auth off) and a tool name,
-- written only through rtb_remember_approval.
create table if not exists public.tool_approvals (
  subject    text not null,
  tool       text not null,
  created_at timestamptz not null default now(),
  primary key (subject, tool)
);

-- The page's session list: most recent first, keyset cursor on started_at.
create index if not exists sessions_started_at_idx on public.sessions (started_at desc, id desc);
-- The same list for one owner (GET /api/sessions of a signed-in user, the RLS policy below).
create index if not exists sessions_owner_started_at_idx on public.sessions (owner, started_at desc, id desc);
-- "Has this turn been answered?" for open_turn_id, without scanning the whole log.
create index if not exists session_events_answered_idx on public.session_events (session_id, turn_id)
  where type = 'assistant_message';
-- The summary workers' claim: only pending jobs are indexed, in due order.
-- Failed summaries, counted for /metrics without reading every session.
create index if not exists sessions_summary_failed_idx on public.sessions (id) where summary_status = 'failed';
create index if not exists sessions_summary_due_idx on public.sessions (summary_due_at, id)
  where summary_status = 'pending';

alter table public.sessions enable row level security;
alter table public.session_events enable row level security;
alter table public.profiles enable row level security;
alter table public.user_usage enable row level security;
alter table public.tool_approvals enable row level security;

-- ── Supabase users (DESIGN §10) ────────────────────────────────────────────────
-- Supabase has these roles; a plain Postgres gets them (nologin) so the same policies apply there.
-- Roles are cluster-wide: another database applying this file at the same moment may create them first.
do $$
declare
  role text;
begin
  foreach role in array array['anon', 'authenticated'] loop
    if not exists (select 1 from pg_roles where rolname = role) then
      begin
        execute format('create role %I nologin', role);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
end $$;

-- A signed-in user reads their own sessions and those sessions' events, nothing else: no write policy
-- exists, and the privileges block at the end grants authenticated select on these two tables only.
-- The claim is read through current_setting(..., true) (PostgREST sets it per request), so a plain
-- Postgres without it sees null, which matches no owner. "(select …)" makes it one init plan per query.
drop policy if exists sessions_select_own on public.sessions;
create policy sessions_select_own on public.sessions for select to authenticated
  using (owner = (select nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'));

drop policy if exists session_events_select_own on public.session_events;
create policy session_events_select_own on public.session_events for select to authenticated
  using (exists (
    select 1 from public.sessions s
    where s.id = session_events.session_id
      and s.owner = (select nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')));
-- profiles and user_usage: RLS on and deliberately no policies, so anon/authenticated see no rows.

-- ── helpers ────────────────────────────────────────────────────────────────────
create or replace function public.rtb_iso(p_ts timestamptz) returns text
language sql immutable security invoker set search_path = public
as $$ select to_char(p_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- The one place a sessions row becomes the SessionRecord shape (camelCase, ISO-8601 UTC timestamps).
create or replace function public.rtb_session_json(s public.sessions) returns jsonb
language sql stable security invoker set search_path = public
as $$
  select jsonb_build_object(
    'id', s.id, 'owner', s.owner, 'status', s.status, 'startedAt', rtb_iso(s.started_at), 'endedAt', rtb_iso(s.ended_at),
    'durationMs', s.duration_ms, 'summary', s.summary, 'summaryStatus', s.summary_status,
    'summaryError', s.summary_error, 'messageCount', s.message_count, 'lastSeq', s.last_seq,
    'title', s.title, 'openTurnId', s.open_turn_id, 'version', s.version)
$$;

create or replace function public.rtb_schema_version() returns integer
language sql immutable security invoker set search_path = public
as $$ select 7 $$;

-- ── event log ──────────────────────────────────────────────────────────────────
-- p_events: [{session_id, seq, type, turn_id, payload, created_at}, …]. Returns the number of events
-- actually inserted; counters move only for those, so a retried batch changes nothing.
create or replace function public.rtb_append_events(p_events jsonb) returns integer
language plpgsql volatile security invoker set search_path = public
as $$
declare
  v_inserted integer;
  v_touched  text[];
  v_stale    text;
begin
  if p_events is null or jsonb_typeof(p_events) <> 'array' then
    raise exception 'rtb_append_events: p_events must be a JSON array' using errcode = '22023';
  end if;
  if exists (select 1 from jsonb_to_recordset(p_events) as e(session_id text) where coalesce(e.session_id, '') = '') then
    raise exception 'rtb_append_events: every event needs a session_id' using errcode = '22023';
  end if;

  insert into sessions (id, status, started_at)
  select e.session_id, 'active', min(coalesce(e.created_at, now()))
  from jsonb_to_recordset(p_events) as e(session_id text, created_at timestamptz)
  group by e.session_id
  order by e.session_id -- a stable lock order across concurrent batches
  on conflict (id) do nothing;

  -- Fencing (DESIGN §11): an event written under an epoch is stored only while that epoch owns the session.
  -- The rows stay locked to the end of the transaction, so no acquisition slips in between check and insert.
  perform 1 from sessions s
  where s.id in (select e.session_id from jsonb_to_recordset(p_events) as e(session_id text))
  order by s.id for no key update;
  select e.session_id into v_stale
  from jsonb_to_recordset(p_events) as e(session_id text, epoch integer)
  join sessions s on s.id = e.session_id
  where e.epoch is not null and s.lease_epoch <> e.epoch
  limit 1;
  if v_stale is not null then
    raise exception 'rtb_append_events: session % is owned under a newer epoch; this writer was fenced off', v_stale
      using errcode = 'RTB01';
  end if;

  with ins as (
    insert into session_events (session_id, seq, type, turn_id, payload, created_at)
    select e.session_id, e.seq, e.type, e.turn_id, e.payload, coalesce(e.created_at, now())
    from jsonb_to_recordset(p_events)
      as e(session_id text, seq integer, type text, turn_id text, payload jsonb, created_at timestamptz)
    order by e.session_id, e.seq
    on conflict (session_id, seq) do nothing
    returning session_id, seq, type
  ), agg as (
    select session_id, max(seq) as max_seq, count(*) as n,
           count(*) filter (where type in ('user_message', 'assistant_message')) as messages
    from ins group by session_id
  ), upd as (
    update sessions s set
      last_seq = greatest(s.last_seq, agg.max_seq),
      message_count = s.message_count + agg.messages,
      status = 'active',
      -- an ended session that gets new events is live again until its next end
      ended_at = case when s.status = 'ended' then null else s.ended_at end,
      duration_ms = case when s.status = 'ended' then null else s.duration_ms end,
      updated_at = now()
    from agg where s.id = agg.session_id
    returning s.id, agg.n, agg.messages
  )
  select coalesce(sum(n), 0), array_agg(id) filter (where messages > 0) into v_inserted, v_touched from upd;

  -- A retry of a stored event is harmless; another event under a stored seq is an error, never a silent skip.
  select e.session_id || ' seq ' || e.seq into v_stale
  from jsonb_to_recordset(p_events) as e(session_id text, seq integer, payload jsonb)
  join session_events ev on ev.session_id = e.session_id and ev.seq = e.seq
  where ev.payload <> e.payload
  limit 1;
  if v_stale is not null then
    raise exception 'rtb_append_events: session % already holds another event', v_stale using errcode = 'RTB02';
  end if;

  -- Title and open turn are read back from the log (this statement sees the rows inserted above), so
  -- batches stored out of order still give the right answer: the open turn is the latest
  -- user_message's turn while no assistant_message of that turn is stored.
  if v_touched is not null then
    update sessions s set
      title = coalesce(s.title, (
        select left(ev.payload ->> 'content', 120) from session_events ev
        where ev.session_id = s.id and ev.type = 'user_message' order by ev.seq limit 1)),
      open_turn_id = (
        select u.turn_id from (
          select ev.turn_id from session_events ev
          where ev.session_id = s.id and ev.type = 'user_message' order by ev.seq desc limit 1
        ) u
        where not exists (
          select 1 from session_events a
          where a.session_id = s.id and a.type = 'assistant_message' and a.turn_id = u.turn_id))
    where s.id = any (v_touched);
  end if;
  return v_inserted;
end
$$;

-- Owner leases (DESIGN §11). An instance that loads a live session acquires it: the lease is granted when nobody
-- holds it, it expired, or it is this instance's; every acquisition bumps lease_epoch, the fencing token that
-- appends, reservations and ends must carry. It also reserves the next p_count seqs for numbering, ahead of what
-- is sent, past both the previous reservation and the stored log: a process that died numbered nothing above
-- the mark, so the new owner numbers past anything a client may have seen. Answers {"epoch", "from", "to"}
-- ("from" - 1 is the previous mark); {"held": instance, "until"} when a live lease is another instance's; with
-- p_create false a session with no row gets {"epoch": 0, "from": 1, "to": 0} and no row.
do $$
begin
  if to_regprocedure('public.rtb_reserve_seqs(text, integer)') is not null then
    drop function public.rtb_reserve_seqs(text, integer);
  end if;
  if to_regprocedure('public.rtb_reserve_seqs(text, integer, boolean)') is not null then
    drop function public.rtb_reserve_seqs(text, integer, boolean);
  end if;
  if to_regprocedure('public.rtb_release_seqs(text, integer)') is not null then
    drop function public.rtb_release_seqs(text, integer);
  end if;
  if to_regprocedure('public.rtb_end_session(text, timestamptz)') is not null then
    drop function public.rtb_end_session(text, timestamptz);
  end if;
end $$;
create or replace function public.rtb_acquire_session(
  p_session_id text, p_instance text, p_lease_ms integer, p_count integer, p_create boolean
) returns jsonb
language plpgsql volatile security invoker set search_path = public
as $$
declare
  v_epoch integer;
  v_to    integer;
  v_held  text;
  v_until timestamptz;
begin
  if coalesce(p_session_id, '') = '' or coalesce(p_instance, '') = '' then
    raise exception 'rtb_acquire_session: p_session_id and p_instance must be non-empty strings' using errcode = '22023';
  end if;
  if p_count is null or p_count < 1 or p_lease_ms is null or p_lease_ms < 1 then
    raise exception 'rtb_acquire_session: p_count and p_lease_ms must be positive, got % and %', p_count, p_lease_ms using errcode = '22023';
  end if;
  if coalesce(p_create, true) then
    insert into sessions (id, status, started_at) values (p_session_id, 'active', date_trunc('milliseconds', now()))
    on conflict (id) do nothing;
  end if;
  update sessions s set
    lease_instance = p_instance, lease_epoch = s.lease_epoch + 1,
    lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
    seq_reserved = greatest(s.seq_reserved, s.last_seq) + p_count, updated_at = now()
  where s.id = p_session_id
    and (s.lease_instance is null or s.lease_instance = p_instance or s.lease_until is null or s.lease_until <= now())
  returning s.lease_epoch, s.seq_reserved into v_epoch, v_to;
  if v_epoch is not null then
    return jsonb_build_object('epoch', v_epoch, 'from', v_to - p_count + 1, 'to', v_to);
  end if;
  select s.lease_instance, s.lease_until into v_held, v_until from sessions s where s.id = p_session_id;
  if v_held is null then
    return jsonb_build_object('epoch', 0, 'from', 1, 'to', 0);
  end if;
  return jsonb_build_object('held', v_held, 'until', rtb_iso(v_until));
end
$$;

-- The next p_count seqs for the owner under p_epoch (null: unfenced, for tools and tests); RTB01 when another
-- epoch owns the session now. Answers {"from", "to"}; a session with no row gets {"from": 1, "to": 0}.
create or replace function public.rtb_reserve_seqs(p_session_id text, p_count integer, p_epoch integer) returns jsonb
language plpgsql volatile security invoker set search_path = public
as $$
declare
  v_to integer;
begin
  if p_count is null or p_count < 1 then
    raise exception 'rtb_reserve_seqs: p_count must be a positive integer, got %', p_count using errcode = '22023';
  end if;
  update sessions s set seq_reserved = greatest(s.seq_reserved, s.last_seq) + p_count, updated_at = now()
  where s.id = p_session_id and (p_epoch is null or s.lease_epoch = p_epoch)
  returning s.seq_reserved into v_to;
  if v_to is not null then
    return jsonb_build_object('from', v_to - p_count + 1, 'to', v_to);
  end if;
  if exists (select 1 from sessions s where s.id = p_session_id) then
    raise exception 'rtb_reserve_seqs: session % is owned under a newer epoch', p_session_id using errcode = 'RTB01';
  end if;
  return jsonb_build_object('from', 1, 'to', 0);
end
$$;

-- Extends this instance's leases; answers the ids (of those asked) it no longer holds under the given epoch.
create or replace function public.rtb_renew_leases(p_instance text, p_lease_ms integer, p_leases jsonb) returns jsonb
language sql volatile security invoker set search_path = public
as $$
  with l as (
    select x.session_id, x.epoch from jsonb_to_recordset(coalesce(p_leases, '[]'::jsonb)) as x(session_id text, epoch integer)
  ), upd as (
    update sessions s set lease_until = now() + make_interval(secs => p_lease_ms / 1000.0)
    from l where s.id = l.session_id and s.lease_epoch = l.epoch and s.lease_instance = p_instance
    returning s.id
  )
  select coalesce(jsonb_agg(l.session_id order by l.session_id), '[]'::jsonb) from l where l.session_id not in (select id from upd)
$$;

-- Gives back what was reserved above p_used (the highest seq numbered, all of them stored), never below a stored
-- seq, so the next visit numbers on densely; with p_epoch, only while that epoch owns the session, and the lease
-- is let go too (another instance may take the session at once). Called at a session's end and a clean stop.
create or replace function public.rtb_release_seqs(p_session_id text, p_used integer, p_epoch integer) returns void
language sql volatile security invoker set search_path = public
as $$
  update sessions s set
    seq_reserved = least(s.seq_reserved, greatest(s.last_seq, coalesce(p_used, 0))),
    lease_instance = case when p_epoch is null then s.lease_instance else null end,
    lease_until = case when p_epoch is null then s.lease_until else null end,
    updated_at = now()
  where s.id = p_session_id and (p_epoch is null or s.lease_epoch = p_epoch)
$$;

create or replace function public.rtb_list_events(p_session_id text, p_after integer, p_limit integer) returns jsonb
language sql stable security invoker set search_path = public
as $$
  select coalesce(jsonb_agg(t.payload order by t.seq), '[]'::jsonb)
  from (
    select ev.seq, ev.payload from session_events ev
    where ev.session_id = p_session_id and ev.seq > coalesce(p_after, 0)
    order by ev.seq limit greatest(coalesce(p_limit, 100), 0)
  ) t
$$;

-- ── sessions ───────────────────────────────────────────────────────────────────
create or replace function public.rtb_get_session(p_id text) returns jsonb
language sql stable security invoker set search_path = public
as $$ select rtb_session_json(s) from sessions s where s.id = p_id $$;

-- The page after the cursor (p_before, p_before_id) in (started_at desc, id desc) order; without p_before_id,
-- after the time p_before; only p_owner's sessions unless it is null. Earlier versions had fewer arguments
-- (version 1: no id in the cursor; version 2: no owner): they are dropped, not left as overloads PostgREST
-- could not choose between (checked first, so a second run prints no notice).
do $$
begin
  if to_regprocedure('public.rtb_list_sessions(integer, timestamptz, text)') is not null then
    drop function public.rtb_list_sessions(integer, timestamptz, text);
  end if;
  if to_regprocedure('public.rtb_list_sessions(integer, timestamptz, text, text)') is not null then
    drop function public.rtb_list_sessions(integer, timestamptz, text, text);
  end if;
end $$;
create or replace function public.rtb_list_sessions(
  p_limit integer, p_before timestamptz, p_status text, p_before_id text, p_owner text
) returns jsonb
language sql stable security invoker set search_path = public
as $$
  select coalesce(jsonb_agg(rtb_session_json(t.s) order by t.started_at desc, t.id desc), '[]'::jsonb)
  from (
    select s, s.started_at, s.id from sessions s
    where (p_before is null or s.started_at < p_before or (s.started_at = p_before and s.id < p_before_id))
      and (p_status is null or s.status = p_status)
      and (p_owner is null or s.owner = p_owner)
    order by s.started_at desc, s.id desc limit greatest(coalesce(p_limit, 20), 0)
  ) t
$$;

-- Active sessions no live instance holds (DESIGN §11): the lease expired (its instance died or was cut off) or was
-- given back (a drain). Every instance sweeps these now and then and takes them, so their open turns are closed
-- and their disconnect grace runs even when no client comes back. Oldest lapse first; never-leased rows first of all.
create index if not exists sessions_lease_lapse_idx on public.sessions (lease_until) where status = 'active';
create or replace function public.rtb_list_lapsed_sessions(p_limit integer) returns jsonb
language sql stable security invoker set search_path = public
as $$
  select coalesce(jsonb_agg(rtb_session_json(t.s) order by t.lease_until nulls first, t.id), '[]'::jsonb)
  from (
    select s, s.lease_until, s.id from sessions s
    where s.status = 'active' and (s.lease_until is null or s.lease_until <= now())
    order by s.lease_until nulls first, s.id limit greatest(coalesce(p_limit, 100), 0)
  ) t
$$;

-- The owner on record, creating the session (active, no events) owned by p_owner when it is new. An existing
-- row is never changed, so a session created while auth was off keeps its null owner. Of two concurrent
-- claims of one new id the second insert waits for the first and does nothing; the select that follows is a
-- new statement with a new snapshot, so both return the winner. started_at is cut to the millisecond: the
-- list cursor is the ISO (ms) startedAt, and a microsecond left over would skip sessions between pages.
create or replace function public.rtb_claim_session(p_session_id text, p_owner text) returns text
language plpgsql volatile security invoker set search_path = public
as $$
declare
  v_owner text;
begin
  if coalesce(p_session_id, '') = '' then
    raise exception 'rtb_claim_session: p_session_id must be a non-empty string' using errcode = '22023';
  end if;
  if coalesce(p_owner, '') = '' then
    raise exception 'rtb_claim_session: p_owner must be a non-empty string' using errcode = '22023';
  end if;
  insert into sessions (id, owner, status, started_at) values (p_session_id, p_owner, 'active', date_trunc('milliseconds', now()))
  on conflict (id) do nothing;
  select s.owner into v_owner from sessions s where s.id = p_session_id;
  return v_owner;
end
$$;

-- Ending and queueing the summary job are one statement: one version, one job.
create or replace function public.rtb_end_session(p_session_id text, p_ended_at timestamptz, p_epoch integer default null)
returns boolean
language plpgsql volatile security invoker set search_path = public
as $$
begin
  if p_epoch is not null and exists (select 1 from sessions s where s.id = p_session_id and s.lease_epoch <> p_epoch) then
    raise exception 'rtb_end_session: session % is owned under a newer epoch', p_session_id using errcode = 'RTB01';
  end if;
  update sessions s set
      status = 'ended', ended_at = p_ended_at,
      -- a session with events lasted some time: never 0 or a negative clock skew
      duration_ms = greatest(1, round(extract(epoch from (p_ended_at - s.started_at)) * 1000))::bigint,
      version = s.version + 1,
      summary_status = 'pending', summary_error = null, summary_due_at = now(), summary_attempts = 0,
      summary_lease_owner = null, summary_lease_until = null, updated_at = now()
    where s.id = p_session_id and s.status = 'active';
  return found;
end
$$;

-- ── summary jobs ───────────────────────────────────────────────────────────────
-- A lease stays its worker's until another worker claims the job (possible once it expired), so a
-- slow worker that finishes just after lease_until still completes when nobody took over.
create or replace function public.rtb_claim_summary_jobs(p_worker text, p_limit integer, p_lease_ms integer)
returns table (session_id text, version integer, attempts integer, lease_until timestamptz)
language sql volatile security invoker set search_path = public
as $$
  with due as (
    select s.id from sessions s
    where s.summary_status = 'pending' and s.summary_due_at <= now()
      and (s.summary_lease_until is null or s.summary_lease_until <= now())
    order by s.summary_due_at, s.id
    limit greatest(coalesce(p_limit, 1), 0)
    for update skip locked
  )
  update sessions s set
    summary_lease_owner = p_worker,
    summary_lease_until = now() + make_interval(secs => p_lease_ms / 1000.0),
    summary_attempts = s.summary_attempts + 1,
    updated_at = now()
  from due where s.id = due.id
  returning s.id, s.version, s.summary_attempts, s.summary_lease_until
$$;

create or replace function public.rtb_complete_summary_job(p_session_id text, p_version integer, p_worker text, p_summary text)
returns boolean
language sql volatile security invoker set search_path = public
as $$
  with upd as (
    update sessions s set
      summary = p_summary, summary_status = 'ready', summary_error = null, summary_due_at = null,
      summary_lease_owner = null, summary_lease_until = null, updated_at = now()
    where s.id = p_session_id and s.version = p_version and s.summary_status = 'pending'
      and s.summary_lease_owner = p_worker
    returning 1
  )
  select exists (select 1 from upd)
$$;

create or replace function public.rtb_fail_summary_job(
  p_session_id text, p_version integer, p_worker text, p_error text, p_retry_in_ms integer, p_max_attempts integer
) returns text
language plpgsql volatile security invoker set search_path = public
as $$
declare
  v_attempts integer;
begin
  select s.summary_attempts into v_attempts from sessions s
  where s.id = p_session_id and s.version = p_version and s.summary_status = 'pending'
    and s.summary_lease_owner = p_worker
  for update;
  if not found then
    return 'lost';
  end if;
  if v_attempts >= p_max_attempts then
    update sessions s set summary_status = 'failed', summary_error = p_error, summary_due_at = null,
      summary_lease_owner = null, summary_lease_until = null, updated_at = now()
    where s.id = p_session_id;
    return 'failed';
  end if;
  update sessions s set summary_error = p_error,
    summary_due_at = now() + make_interval(secs => greatest(p_retry_in_ms, 0) / 1000.0),
    summary_lease_owner = null, summary_lease_until = null, updated_at = now()
  where s.id = p_session_id;
  return 'retry';
end
$$;

-- ── profiles (the user_profile tool) ───────────────────────────────────────────
create or replace function public.rtb_get_profile(p_user_id text) returns jsonb
language sql stable security invoker set search_path = public
as $$
  select jsonb_build_object('userId', p.user_id, 'name', p.name, 'email', p.email, 'plan', p.plan,
    'createdAt', rtb_iso(p.created_at), 'preferences', p.preferences)
  from profiles p where p.user_id = p_user_id
$$;

-- ── usage (per-user daily token budget) ────────────────────────────────────────
-- Adds p_tokens to the principal's count for the day in one upsert (concurrent calls serialise on the row)
-- and returns the new total.
create or replace function public.rtb_add_usage(p_principal text, p_day date, p_tokens bigint) returns bigint
language plpgsql volatile security invoker set search_path = public
as $$
declare
  v_total bigint;
begin
  if coalesce(p_principal, '') = '' or p_day is null then
    raise exception 'rtb_add_usage: p_principal and p_day are required' using errcode = '22023';
  end if;
  if p_tokens is null or p_tokens < 0 then
    raise exception 'rtb_add_usage: p_tokens must be a non-negative integer, got %', p_tokens using errcode = '22023';
  end if;
  insert into user_usage as u (principal, day, tokens, updated_at) values (p_principal, p_day, p_tokens, now())
  on conflict (principal, day) do update set tokens = u.tokens + excluded.tokens, updated_at = now()
  returning u.tokens into v_total;
  return v_total;
end
$$;

create or replace function public.rtb_get_usage(p_principal text, p_day date) returns bigint
language sql stable security invoker set search_path = public
as $$ select coalesce((select u.tokens from user_usage u where u.principal = p_principal and u.day = p_day), 0)::bigint $$;

-- ── remembered approvals (DESIGN §13) ───────────────────────────────────────────
create or replace function public.rtb_remember_approval(p_subject text, p_tool text) returns boolean
language plpgsql volatile security invoker set search_path = public
as $$
begin
  if coalesce(p_subject, '') = '' or coalesce(p_tool, '') = '' then
    raise exception 'rtb_remember_approval: p_subject and p_tool are required' using errcode = '22023';
  end if;
  insert into tool_approvals (subject, tool) values (p_subject, p_tool) on conflict (subject, tool) do nothing;
  return true;
end
$$;

create or replace function public.rtb_is_approval_remembered(p_subject text, p_tool text) returns boolean
language sql stable security invoker set search_path = public
as $$ select exists (select 1 from tool_approvals a where a.subject = p_subject and a.tool = p_tool) $$;

-- ── summary queue (rtb_summary_jobs on /metrics) ───────────────────────────────
-- pending: waiting for a worker; running: claimed under a lease that has not expired (any instance); failed.
create or replace function public.rtb_summary_job_counts() returns jsonb
language sql stable security invoker set search_path = public
as $$
  select jsonb_build_object(
    'pending', count(*) filter (where s.summary_status = 'pending' and (s.summary_lease_until is null or s.summary_lease_until <= now())),
    'running', count(*) filter (where s.summary_status = 'pending' and s.summary_lease_until > now()),
    'failed', count(*) filter (where s.summary_status = 'failed'))
  from sessions s where s.summary_status in ('pending', 'failed')
$$;

-- ── privileges ─────────────────────────────────────────────────────────────────
-- Functions are executable by PUBLIC by default and Supabase also grants anon/authenticated
-- explicitly: take both away, keep service_role (which exists only on Supabase, hence the guards).
-- Tables: Supabase's default privileges give anon/authenticated everything on new tables; all of it is
-- taken back, then authenticated gets select on sessions and session_events only (rows filtered by the
-- policies above). No insert/update/delete for either role, and profiles, user_usage and tool_approvals stay closed.
do $$
declare
  fn   regprocedure;
  role text;
begin
  for fn in
    select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.proname like 'rtb\_%'
  loop
    execute format('revoke all on function %s from public', fn);
    foreach role in array array['anon', 'authenticated'] loop
      execute format('revoke all on function %s from %I', fn, role);
    end loop;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
      execute format('grant execute on function %s to service_role', fn);
    end if;
  end loop;

  revoke all on public.sessions, public.session_events, public.profiles, public.user_usage, public.tool_approvals
    from anon, authenticated;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant select, insert, update, delete on public.sessions, public.session_events, public.profiles, public.user_usage,
      public.tool_approvals to service_role;
  end if;
end
$$;
grant usage on schema public to anon, authenticated;
grant select on public.sessions, public.session_events to authenticated;
