-- Invocation records: per-minute counts for fast statistics, a time index
-- for pruning by age, and a notice on every insert for live logs.

-- One row per function, minute, status and HTTP class: GET .../stats sums
-- these instead of counting millions of records. The rows are kept as long
-- as records may be (AEROFN_RECORDS_MAX_AGE), whatever the per-function cap
-- prunes, so the counts stay those of the calls made.
CREATE TABLE aerofn.invocation_minutes (
	function_name text NOT NULL,
	minute        timestamptz NOT NULL,
	status        text NOT NULL,
	http_class    smallint NOT NULL, -- http_status / 100 for 100-599, else 0
	count         bigint NOT NULL,
	duration_max  double precision NOT NULL,
	memory_max    double precision NOT NULL,
	PRIMARY KEY (function_name, minute, status, http_class)
);
CREATE INDEX invocation_minutes_minute ON aerofn.invocation_minutes (minute);

-- Pruning by age walks records oldest first across functions.
CREATE INDEX invocations_created_at ON aerofn.invocations (created_at);

-- Once per inserting statement (the records writer's COPY of a batch): add
-- the batch to the minutes, in key order so that two nodes' batches take
-- the row locks in one order, and announce the new ids on channel
-- aerofn_invocations, at most 200 per notice (a payload stays under 8000
-- bytes). Listeners (live logs on every node) read the rows by id; a notice
-- is delivered only once the insert commits.
CREATE FUNCTION aerofn.invocations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO aerofn.invocation_minutes AS m (function_name, minute, status, http_class, count, duration_max, memory_max)
	SELECT function_name, date_trunc('minute', created_at, 'UTC'), status,
		CASE WHEN http_status BETWEEN 100 AND 599 THEN http_status / 100 ELSE 0 END,
		count(*), max(duration_ms), max(memory_peak_mb)
	FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
	ON CONFLICT (function_name, minute, status, http_class) DO UPDATE SET count = m.count + excluded.count,
		duration_max = greatest(m.duration_max, excluded.duration_max),
		memory_max = greatest(m.memory_max, excluded.memory_max);
	PERFORM pg_notify('aerofn_invocations', string_agg(id::text, ','))
	FROM (SELECT id, (row_number() OVER () - 1) / 200 AS chunk FROM new_rows) c GROUP BY chunk;
	RETURN NULL;
END $$;

CREATE TRIGGER invocations_inserted AFTER INSERT ON aerofn.invocations
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION aerofn.invocations_inserted();

-- The records already stored count too.
INSERT INTO aerofn.invocation_minutes (function_name, minute, status, http_class, count, duration_max, memory_max)
SELECT function_name, date_trunc('minute', created_at, 'UTC'), status,
	CASE WHEN http_status BETWEEN 100 AND 599 THEN http_status / 100 ELSE 0 END,
	count(*), max(duration_ms), max(memory_peak_mb)
FROM aerofn.invocations GROUP BY 1, 2, 3, 4;
