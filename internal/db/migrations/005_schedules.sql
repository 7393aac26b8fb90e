-- Cron-triggered functions (internal/scheduler; docs/RATIONALE.md, "Schedules").
--
-- aerofn.schedules holds one row per schedule trigger of a function, kept in
-- step with the registry by the scheduler's registry hook in the same
-- transaction as every deploy, patch and delete. next_tick is the first tick
-- that has not been handled yet; NULL when the expression never fires again.
CREATE TABLE aerofn.schedules (
	function_id   uuid NOT NULL REFERENCES aerofn.functions (id) ON DELETE CASCADE,
	trigger_index integer NOT NULL CHECK (trigger_index >= 0),
	cron          text NOT NULL,
	timezone      text NOT NULL DEFAULT '',
	catch_up      text NOT NULL DEFAULT 'once' CHECK (catch_up IN ('once', 'skip')),
	overlap       text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue')),
	next_tick     timestamptz,
	enabled       boolean NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (function_id, trigger_index)
);
CREATE INDEX schedules_due ON aerofn.schedules (next_tick) WHERE enabled;

-- aerofn.schedule_runs is one row per handled tick. The primary key is what
-- makes a tick exist at most once whatever the number of nodes: a second
-- insert of the same tick is a conflict, not a second run. A row is claimed
-- (state running, node) and that claim committed before the function starts,
-- so a crash can leave a run interrupted but never run it twice.
--
-- No foreign key to functions: like aerofn.invocations, the history of a
-- deleted function stays readable until it is pruned.
CREATE TABLE aerofn.schedule_runs (
	function_id    uuid NOT NULL,
	trigger_index  integer NOT NULL,
	scheduled_time timestamptz NOT NULL,
	-- why the row exists: a due tick, one run standing for missed ticks, or
	-- POST /functions/v1/{name}/run
	kind           text NOT NULL DEFAULT 'tick' CHECK (kind IN ('tick', 'catch_up', 'manual')),
	state          text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed',
		'interrupted', 'skipped_overlap', 'skipped_missed', 'cancelled')),
	cron           text NOT NULL,
	timezone       text NOT NULL DEFAULT '',
	-- how many due ticks the row stands for when it is a catch-up run or a
	-- recorded skip of missed ticks
	missed_count   integer NOT NULL DEFAULT 0,
	-- the node that claimed the run, and the advisory lock key that its
	-- scheduler session holds while it lives (see the sweeper)
	node           text,
	node_key       integer,
	invocation_id  uuid,
	role           text,
	status         text,
	-- error: why the call failed; note: why the row is in its state (a skip,
	-- a catch-up, a cancellation, an interruption)
	error          text,
	note           text,
	output         text,
	created_at     timestamptz NOT NULL DEFAULT now(),
	started_at     timestamptz,
	finished_at    timestamptz,
	PRIMARY KEY (function_id, trigger_index, scheduled_time)
);
-- Claims, overlap checks and the sweeper only look at open runs.
CREATE INDEX schedule_runs_open ON aerofn.schedule_runs (function_id, trigger_index, scheduled_time)
	WHERE state IN ('pending', 'running');
