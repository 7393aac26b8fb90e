package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/scheduler/cronspec"
)

func mustSpec(t testing.TB, cron, tz string) *cronspec.Spec {
	t.Helper()
	s, err := cronspec.Parse(cron, tz)
	if err != nil {
		t.Fatalf("parsing %q in %q: %v", cron, tz, err)
	}
	return s
}

func at(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func load(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPlanOnTime(t *testing.T) {
	s := mustSpec(t, "* * * * * *", "")
	next := at(t, "2025-06-01 12:00:00", time.UTC)
	runs, n := planTicks(s, next, next.Add(3*time.Millisecond), 10*time.Second, CatchUpOnce)
	if len(runs) != 1 || !runs[0].At.Equal(next) || runs[0].Kind != KindTick || runs[0].State != StatePending {
		t.Fatalf("runs %+v", runs)
	}
	if !n.Equal(next.Add(time.Second)) {
		t.Fatalf("next %s", n)
	}
}

// A ticker that took over late runs every tick within the grace, one row
// each: a leader change is not an outage.
func TestPlanLateWithinGrace(t *testing.T) {
	s := mustSpec(t, "* * * * * *", "")
	next := at(t, "2025-06-01 12:00:00", time.UTC)
	now := next.Add(4*time.Second + 300*time.Millisecond)
	runs, n := planTicks(s, next, now, 10*time.Second, CatchUpOnce)
	if len(runs) != 5 {
		t.Fatalf("want 5 runs, got %+v", runs)
	}
	for i, r := range runs {
		if !r.At.Equal(next.Add(time.Duration(i)*time.Second)) || r.Kind != KindTick || r.Missed != 0 {
			t.Fatalf("run %d: %+v", i, r)
		}
	}
	if !n.Equal(next.Add(5 * time.Second)) {
		t.Fatalf("next %s", n)
	}
}

func TestPlanCatchUp(t *testing.T) {
	s := mustSpec(t, "*/10 * * * *", "") // every 10 minutes
	next := at(t, "2025-06-01 00:00:00", time.UTC)
	now := at(t, "2025-06-01 03:05:00", time.UTC)
	for _, policy := range []string{CatchUpOnce, CatchUpSkip} {
		runs, n := planTicks(s, next, now, 10*time.Second, policy)
		// 00:00 ... 03:00 is 19 ticks, all older than the grace.
		if len(runs) != 1 || runs[0].Missed != 19 || !runs[0].At.Equal(at(t, "2025-06-01 03:00:00", time.UTC)) || runs[0].Capped {
			t.Fatalf("%s: %+v", policy, runs)
		}
		want := map[string][2]string{CatchUpOnce: {KindCatchUp, StatePending}, CatchUpSkip: {KindTick, StateSkippedMissed}}[policy]
		if runs[0].Kind != want[0] || runs[0].State != want[1] {
			t.Fatalf("%s: %+v", policy, runs[0])
		}
		if !n.Equal(at(t, "2025-06-01 03:10:00", time.UTC)) {
			t.Fatalf("next %s", n)
		}
	}
}

// Missed ticks and late ones together: the missed ones fold into one row,
// the late ones run.
func TestPlanCatchUpThenLate(t *testing.T) {
	s := mustSpec(t, "* * * * * *", "")
	next := at(t, "2025-06-01 12:00:00", time.UTC)
	now := next.Add(time.Minute + 500*time.Millisecond)
	runs, _ := planTicks(s, next, now, 10*time.Second, CatchUpOnce)
	// Missed: 12:00:00 ... 12:00:50 (51 ticks, cutoff 12:00:50.5); late: :51 ... 12:01:00.
	if len(runs) != 11 || runs[0].Kind != KindCatchUp || runs[0].Missed != 51 || !runs[0].At.Equal(next.Add(50*time.Second)) {
		t.Fatalf("runs %+v", runs[:1])
	}
	for i, r := range runs[1:] {
		if r.Kind != KindTick || !r.At.Equal(next.Add(time.Duration(51+i)*time.Second)) {
			t.Fatalf("late run %d: %+v", i, r)
		}
	}
}

func TestPlanCapsTheCount(t *testing.T) {
	s := mustSpec(t, "* * * * * *", "")
	next := at(t, "2025-06-01 00:00:00", time.UTC)
	now := next.Add(48 * time.Hour)
	runs, _ := planTicks(s, next, now, 10*time.Second, CatchUpOnce)
	if runs[0].Missed != maxMissedCount || !runs[0].Capped || !runs[0].At.Equal(now.Add(-10*time.Second)) {
		t.Fatalf("capped: %+v", runs[0])
	}
	if !strings.HasPrefix(countText(runs[0]), "at least ") {
		t.Fatalf("count text %q", countText(runs[0]))
	}
}

// Daylight saving, as the scheduler sees it: a daily job in a skipped hour
// runs once at the end of the gap; in a repeated hour it runs once; an hourly
// job runs in both copies of the repeated hour and does not run twice at the
// gap. The ticker advances next_tick through the transitions without losing
// or repeating a tick.
func TestPlanAcrossDaylightSaving(t *testing.T) {
	berlin := load(t, "Europe/Berlin")
	ny := load(t, "America/New_York")
	cases := []struct {
		name     string
		cron, tz string
		from, to time.Time
		want     []string // UTC
	}{
		{
			name: "Berlin spring forward, daily 02:30 runs at 03:00 CEST",
			cron: "30 2 * * *", tz: "Europe/Berlin",
			from: at(t, "2025-03-29 12:00:00", berlin), to: at(t, "2025-04-01 00:00:00", berlin),
			want: []string{"2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"},
		},
		{
			name: "Berlin fall back, daily 02:30 runs once",
			cron: "30 2 * * *", tz: "Europe/Berlin",
			from: at(t, "2025-10-25 12:00:00", berlin), to: at(t, "2025-10-28 00:00:00", berlin),
			want: []string{"2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"},
		},
		{
			name: "New York fall back, hourly runs in both 01:00s",
			cron: "@hourly", tz: "America/New_York",
			from: at(t, "2025-11-02 00:30:00", ny), to: at(t, "2025-11-02 03:30:00", ny),
			want: []string{"2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z", "2025-11-02T07:00:00Z", "2025-11-02T08:00:00Z"},
		},
		{
			name: "New York spring forward, hourly has no 02:00",
			cron: "0 * * * *", tz: "America/New_York",
			from: at(t, "2025-03-09 00:30:00", ny), to: at(t, "2025-03-09 04:30:00", ny),
			want: []string{"2025-03-09T06:00:00Z", "2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"},
		},
		{
			name: "@every is absolute time",
			cron: "@every 30m", tz: "Europe/Berlin",
			from: at(t, "2025-10-26 01:50:00", berlin), to: at(t, "2025-10-26 03:10:00", berlin),
			want: []string{"2025-10-26T00:00:00Z", "2025-10-26T00:30:00Z", "2025-10-26T01:00:00Z", "2025-10-26T01:30:00Z", "2025-10-26T02:00:00Z"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustSpec(t, c.cron, c.tz)
			// Tick every 7 s of simulated time, as a ticker would, and collect
			// what it inserts.
			var got []string
			next := s.Next(c.from)
			for now := c.from; !now.After(c.to); now = now.Add(7 * time.Second) {
				if next.IsZero() || next.After(now) {
					continue
				}
				runs, n := planTicks(s, next, now, 10*time.Second, CatchUpOnce)
				for _, r := range runs {
					if r.Kind != KindTick {
						t.Fatalf("a tick was missed at %s: %+v", now, r)
					}
					got = append(got, r.At.UTC().Format(time.RFC3339))
				}
				next = n
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestLastTickBy(t *testing.T) {
	s := mustSpec(t, "0 0 1 1 *", "")
	to := at(t, "2025-06-01 00:00:00", time.UTC)
	if got := lastTickBy(s, to); !got.Equal(at(t, "2025-01-01 00:00:00", time.UTC)) {
		t.Fatalf("got %s", got)
	}
	s = mustSpec(t, "* * * * * *", "")
	if got := lastTickBy(s, to.Add(500*time.Millisecond)); !got.Equal(to) {
		t.Fatalf("got %s", got)
	}
}

func TestParseTriggerDefaultsAndFields(t *testing.T) {
	tr, err := ParseTrigger(registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * * *", Timezone: "Europe/Berlin"}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if tr.CatchUp != CatchUpOnce || tr.Overlap != OverlapSkip || tr.Index != 2 || tr.Spec.Location().String() != "Europe/Berlin" {
		t.Fatalf("%+v", tr)
	}
	cases := []struct {
		t     registry.Trigger
		field string
	}{
		{registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * * * * *"}}, "config.triggers[4].cron"},
		{registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "CRON_TZ=Europe/Paris 0 3 * * *", Timezone: "Europe/Berlin"}}, "config.triggers[4].cron"},
		{registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * * *", Timezone: "Local"}}, "config.triggers[4].timezone"},
		{registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * * *", Timezone: "../../etc/passwd"}}, "config.triggers[4].timezone"},
		{registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * * *", CatchUp: "ONCE"}}, "config.triggers[4].catch_up"},
		{registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * * *", Overlap: "skip,queue"}}, "config.triggers[4].overlap"},
	}
	for _, c := range cases {
		_, err := ParseTrigger(c.t, 4)
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || ve.Message == "" {
			t.Errorf("%+v: got %v, want a ValidationError on %s", c.t, err, c.field)
		}
	}
	// The cron message is cronspec's, which names the field.
	_, err = ParseTrigger(registry.Trigger{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "0 3 * 13 *"}}, 0)
	if err == nil || !strings.Contains(err.Error(), "field 4 (month)") {
		t.Fatalf("got %v", err)
	}
}

func TestNextRunsOf(t *testing.T) {
	fn := registry.Function{Enabled: true, Config: registry.Config{Triggers: []registry.Trigger{
		{Type: "database", Database: &registry.DatabaseTrigger{Table: "users"}},
		{Type: "schedule", Schedule: &registry.ScheduleTrigger{Cron: "30 2 * * *", Timezone: "Europe/Berlin"}},
	}}}
	berlin := load(t, "Europe/Berlin")
	nr, err := NextRunsOf(fn, at(t, "2025-03-28 12:00:00", berlin), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(nr) != 1 || nr[0].TriggerIndex != 1 || len(nr[0].Times) != 3 {
		t.Fatalf("%+v", nr)
	}
	var got []string
	for _, tm := range nr[0].Times {
		got = append(got, tm.Format(time.RFC3339))
	}
	// The spring-forward day has no 02:30: that day's run is at 03:00 CEST.
	want := "2025-03-29T02:30:00+01:00 2025-03-30T03:00:00+02:00 2025-03-31T02:30:00+02:00"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
	fn.Enabled = false
	nr, _ = NextRunsOf(fn, time.Now(), 5)
	if len(nr) != 1 || len(nr[0].Times) != 0 || nr[0].Enabled {
		t.Fatalf("disabled: %+v", nr)
	}
}

// FuzzPlanTicks checks the ticker's planning against its contract for any
// expression the config accepts, at any moment, any lateness and grace:
// rows are ticks of the schedule, in order, none after now, missed ticks fold
// into one first row that counts them, and next_tick moves past now. The
// cron parser itself is fuzzed by cronspec's FuzzParse. Run with
//
//	go test -fuzz FuzzPlanTicks ./internal/scheduler
func FuzzPlanTicks(f *testing.F) {
	zones := []string{"", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kathmandu"}
	seeds := []string{"* * * * * *", "*/7 * * * * *", "0 3 * * *", "30 2 * * *", "@hourly", "@every 90s", "0 0 1 1 *",
		"*/10 * * * *", "30 1 * * 0", "0 0 29 2 *", "CRON_TZ=Europe/Berlin 30 2 * * *"}
	for i, s := range seeds {
		f.Add(s, uint8(i), int64(1_700_000_000+i*86_413), uint32(i*977), uint8(10), false)
	}
	f.Fuzz(func(t *testing.T, cron string, zone uint8, base int64, late uint32, graceSec uint8, skip bool) {
		tz := zones[int(zone)%len(zones)]
		if strings.HasPrefix(strings.TrimSpace(cron), "CRON_TZ=") || strings.HasPrefix(strings.TrimSpace(cron), "TZ=") {
			tz = ""
		}
		tr, err := ParseTrigger(registry.Trigger{Type: TriggerType, Schedule: &registry.ScheduleTrigger{Cron: cron, Timezone: tz}}, 0)
		if err != nil {
			var ve *registry.ValidationError
			if !errors.As(err, &ve) || !strings.HasPrefix(ve.Field, "config.triggers[0].") {
				t.Fatalf("ParseTrigger(%q, %q): %v is not a ValidationError on the trigger", cron, tz, err)
			}
			return
		}
		// 1970-2100; lateness up to two hours keeps a per-second brute force cheap.
		const span = 130 * 365 * 86400
		base = (base%span + span) % span
		next := tr.Spec.Next(time.Unix(base, 0))
		if next.IsZero() {
			return
		}
		now := next.Add(time.Duration(late%7200_000) * time.Millisecond)
		grace := time.Duration(graceSec%120+1) * time.Second
		policy := CatchUpOnce
		if skip {
			policy = CatchUpSkip
		}
		runs, n := planTicks(tr.Spec, next, now, grace, policy)
		all := tr.Spec.Between(next.Add(-time.Second), now, 1<<20)
		missed := 0
		for _, a := range all {
			if !a.After(now.Add(-grace)) {
				missed++
			}
		}
		if !n.After(now) {
			t.Fatalf("%q: next_tick %s is not after now %s", cron, n, now)
		}
		if len(all) > 0 && !n.Equal(tr.Spec.Next(all[len(all)-1])) {
			t.Fatalf("%q: next_tick %s skips or repeats a tick after %s", cron, n, all[len(all)-1])
		}
		total := 0
		for i, r := range runs {
			if r.At.After(now) || r.At.Before(next) || !tr.Spec.Next(r.At.Add(-time.Second)).Equal(r.At) {
				t.Fatalf("%q: row %d at %s is not a due tick in [%s, %s]", cron, i, r.At, next, now)
			}
			if i > 0 && !r.At.After(runs[i-1].At) {
				t.Fatalf("%q: rows out of order: %+v", cron, runs)
			}
			switch {
			case r.Kind == KindCatchUp || r.State == StateSkippedMissed:
				if i != 0 || r.Missed != missed || r.Capped {
					t.Fatalf("%q: catch-up row %d %+v, want first with %d missed", cron, i, r, missed)
				}
				if (r.Kind == KindCatchUp) == skip {
					t.Fatalf("%q: catch-up row %+v under policy %s", cron, r, policy)
				}
				total += r.Missed
			case r.Kind == KindTick && r.State == StatePending:
				if !r.At.After(now.Add(-grace)) {
					t.Fatalf("%q: missed tick %s planned as a run (now %s, grace %s)", cron, r.At, now, grace)
				}
				total++
			default:
				t.Fatalf("%q: row %+v", cron, r)
			}
		}
		if total != len(all) {
			t.Fatalf("%q: rows stand for %d ticks, %d were due", cron, total, len(all))
		}
	})
}
