package cronspec

import (
	"fmt"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestDST pins the daylight-saving behaviour of doc.go on the 2025 transitions:
// New York springs forward 02:00 EST -> 03:00 EDT on Mar 9 and falls back
// 02:00 EDT -> 01:00 EST on Nov 2; Berlin springs forward 02:00 CET -> 03:00 CEST
// on Mar 30 and falls back 03:00 CEST -> 02:00 CET on Oct 26.
func TestDST(t *testing.T) {
	tests := []struct {
		name, zone, expr, from string
		want                   []string
	}{
		// Spring forward, daily: the 02:30 tick of the skipped hour runs once, at
		// the end of the gap, and the days around it are untouched.
		{"NY spring daily", "America/New_York", "30 2 * * *", "2025-03-08 00:00",
			[]string{"2025-03-08 02:30:00 EST", "2025-03-09 03:00:00 EDT", "2025-03-10 02:30:00 EDT"}},
		{"Berlin spring daily", "Europe/Berlin", "30 2 * * *", "2025-03-29 00:00",
			[]string{"2025-03-29 02:30:00 CET", "2025-03-30 03:00:00 CEST", "2025-03-31 02:30:00 CEST"}},
		// A tick at the end of the gap is not doubled by the skipped ones.
		{"NY spring 2:30 and 3:00", "America/New_York", "0,30 2,3 * * *", "2025-03-09 00:00",
			[]string{"2025-03-09 03:00:00 EDT", "2025-03-09 03:30:00 EDT", "2025-03-10 02:00:00 EDT"}},
		// Fall back, daily: runs in the first 01:30 only.
		{"NY fall daily", "America/New_York", "30 1 * * *", "2025-11-01 00:00",
			[]string{"2025-11-01 01:30:00 EDT", "2025-11-02 01:30:00 EDT", "2025-11-03 01:30:00 EST"}},
		{"Berlin fall daily", "Europe/Berlin", "30 2 * * *", "2025-10-25 00:00",
			[]string{"2025-10-25 02:30:00 CEST", "2025-10-26 02:30:00 CEST", "2025-10-27 02:30:00 CET"}},
		// Every minute of hour 1 runs 60 times on the fall-back day, not 120.
		{"NY fall minutes of one hour", "America/New_York", "58-59 1 * * *", "2025-11-02 00:00",
			[]string{"2025-11-02 01:58:00 EDT", "2025-11-02 01:59:00 EDT", "2025-11-03 01:58:00 EST"}},
		// Spring forward, hourly: 02:00 does not exist and folds into 03:00.
		{"NY spring hourly", "America/New_York", "0 * * * *", "2025-03-09 00:30",
			[]string{"2025-03-09 01:00:00 EST", "2025-03-09 03:00:00 EDT", "2025-03-09 04:00:00 EDT"}},
		{"Berlin spring hourly", "Europe/Berlin", "@hourly", "2025-03-30 00:30",
			[]string{"2025-03-30 01:00:00 CET", "2025-03-30 03:00:00 CEST", "2025-03-30 04:00:00 CEST"}},
		// Hourly at half past: the skipped 02:30 runs once, at 03:00.
		{"NY spring half past", "America/New_York", "30 * * * *", "2025-03-09 01:00",
			[]string{"2025-03-09 01:30:00 EST", "2025-03-09 03:00:00 EDT", "2025-03-09 03:30:00 EDT"}},
		// Fall back, hourly: both 01:00s run, an hour apart.
		{"NY fall hourly", "America/New_York", "0 * * * *", "2025-11-01 23:30",
			[]string{"2025-11-02 00:00:00 EDT", "2025-11-02 01:00:00 EDT", "2025-11-02 01:00:00 EST", "2025-11-02 02:00:00 EST"}},
		{"Berlin fall hourly", "Europe/Berlin", "0 * * * *", "2025-10-26 01:30",
			[]string{"2025-10-26 02:00:00 CEST", "2025-10-26 02:00:00 CET", "2025-10-26 03:00:00 CET"}},
		// Per-minute and per-second schedules run through both copies.
		{"Berlin fall every 20 minutes", "Europe/Berlin", "*/20 * * * *", "2025-10-26 02:30 +0200",
			[]string{"2025-10-26 02:40:00 CEST", "2025-10-26 02:00:00 CET", "2025-10-26 02:20:00 CET", "2025-10-26 02:40:00 CET", "2025-10-26 03:00:00 CET"}},
		{"NY fall seconds", "America/New_York", "0 */30 * * * *", "2025-11-02 01:59:00 -0400",
			[]string{"2025-11-02 01:00:00 EST", "2025-11-02 01:30:00 EST"}},
		// @every is absolute time: 20-minute steps straight through the repeated hour.
		{"Berlin fall @every", "Europe/Berlin", "@every 20m", "2025-10-26 02:30 +0200",
			[]string{"2025-10-26 02:40:00 CEST", "2025-10-26 02:00:00 CET", "2025-10-26 02:20:00 CET"}},
		{"NY spring @every", "America/New_York", "@every 45m", "2025-03-09 01:00",
			[]string{"2025-03-09 01:45:00 EST", "2025-03-09 03:30:00 EDT", "2025-03-09 04:15:00 EDT"}},
		// Transitions at midnight (Santiago: Saturday 24:00 -> Sunday 01:00). robfig
		// returns Sunday 05:00 for a Saturday-only schedule here.
		{"Santiago weekday across midnight gap", "America/Santiago", "0 5 * * sat", "2025-09-06 06:00",
			[]string{"2025-09-13 05:00:00 -03"}},
		{"Santiago daily midnight gap", "America/Santiago", "@daily", "2025-09-05 12:00",
			[]string{"2025-09-06 00:00:00 -04", "2025-09-07 01:00:00 -03", "2025-09-08 00:00:00 -03"}},
		{"Havana daily midnight gap", "America/Havana", "0 0 * * *", "2025-03-08 12:00",
			[]string{"2025-03-09 01:00:00 CDT", "2025-03-10 00:00:00 CDT"}},
		// Half-hour transition (Lord Howe, 02:00 -> 02:30). robfig returns 02:45.
		{"Lord Howe spring", "Australia/Lord_Howe", "45 1 * * *", "2025-10-05 01:46",
			[]string{"2025-10-06 01:45:00 +11"}},
		{"Lord Howe spring in gap", "Australia/Lord_Howe", "15 2 * * *", "2025-10-04 12:00",
			[]string{"2025-10-05 02:30:00 +11", "2025-10-06 02:15:00 +11"}},
		{"Lord Howe fall", "Australia/Lord_Howe", "45 1 * * *", "2025-04-05 12:00",
			[]string{"2025-04-06 01:45:00 +11", "2025-04-07 01:45:00 +1030"}},
		// Samoa skipped Friday 30 December 2011 altogether.
		{"Apia skipped day", "Pacific/Apia", "0 9 * * *", "2011-12-29 12:00",
			[]string{"2011-12-31 00:00:00 +14", "2011-12-31 09:00:00 +14"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.zone)
			from := mustTime(t, tt.from, s.Location())
			if got := formatTimes(s.NextN(from, len(tt.want))); !equalStrings(got, tt.want) {
				t.Errorf("NextN(%s, %d) =\n%v\nwant\n%v", tt.from, len(tt.want), got, tt.want)
			}
		})
	}
}

func mustTime(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	// An explicit offset picks one of the two readings of a repeated hour;
	// without one ParseInLocation's choice is unspecified.
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02 15:04 -0700", "2006-01-02 15:04:05 -0700"} {
		if tm, err := time.ParseInLocation(layout, s, loc); err == nil {
			return tm
		}
	}
	t.Fatalf("bad time %q", s)
	return time.Time{}
}

// TestDSTAgainstOracle compares Between with a deliberately naive model of the
// rules around every transition of several zones: walk the instants minute by
// minute, remember the highest wall-clock reading seen so far, and
//   - when the reading jumps forward, run once if it or any skipped reading matches;
//   - when the reading is not above the highest one (a repeat), run only if it
//     matches and the hour field is every hour;
//   - otherwise run if it matches.
func TestDSTAgainstOracle(t *testing.T) {
	zones := map[string][]int{
		"America/New_York": {2025}, "Europe/Berlin": {2025}, "Australia/Lord_Howe": {2025},
		"America/Santiago": {2025}, "America/Havana": {2025}, "Australia/Sydney": {2025},
		"Antarctica/Troll": {2025}, "Pacific/Apia": {2011}, "America/Sao_Paulo": {2018},
		"Asia/Tehran": {2021}, "Europe/London": {1968, 1971},
	}
	exprs := []string{
		"30 2 * * *", "30 1 * * *", "0 * * * *", "30 * * * *", "*/15 * * * *", "* 1 * * *",
		"0 0 * * *", "15 0,1,2,3 * * *", "0 5 * * 6", "*/7 2-3 * * *", "45 23 * * *", "0 0 * * 0",
		"59 1 * * *", "0 2 * * *", "0 3 * * *", "30 0 * * *", "0 */2 * * *", "10 * * * 0",
	}
	for zone, years := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, year := range years {
			for _, tr := range transitions(loc, year) {
				from, to := tr.Add(-36*time.Hour), tr.Add(36*time.Hour)
				for _, expr := range exprs {
					s := mustParse(t, expr, zone)
					got := formatTimes(s.Between(from, to, 1000))
					want := formatTimes(oracle(s, from, to))
					if !equalStrings(got, want) {
						t.Errorf("%s %q around %v:\n got %v\nwant %v", zone, expr, tr, got, want)
					}
				}
			}
		}
	}
}

// transitions lists the instants in a year where loc's UTC offset changes.
func transitions(loc *time.Location, year int) []time.Time {
	var out []time.Time
	t := time.Date(year, 1, 1, 0, 0, 0, 0, loc)
	endYear := time.Date(year+1, 1, 1, 0, 0, 0, 0, loc)
	for {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(endYear) {
			return out
		}
		_, o1 := end.Add(-time.Second).Zone()
		_, o2 := end.Zone()
		if o1 != o2 {
			out = append(out, end)
		}
		t = end
	}
}

func oracle(s *Spec, from, to time.Time) []time.Time {
	reading := func(t time.Time) time.Time {
		l := t.In(s.loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
	}
	var out []time.Time
	start := from.Truncate(time.Minute).Add(-maxZoneJump)
	high := reading(start)
	for t := start.Add(time.Minute); !t.After(to); t = t.Add(time.Minute) {
		w := reading(t)
		var fire bool
		switch {
		case w.After(high.Add(time.Minute)):
			fire = matches(s, w)
			for r := high.Add(time.Minute); r.Before(w); r = r.Add(time.Minute) {
				fire = fire || matches(s, r)
			}
		case !w.After(high):
			fire = matches(s, w) && s.allHours
		default:
			fire = matches(s, w)
		}
		if w.After(high) {
			high = w
		}
		if fire && t.After(from) {
			out = append(out, t.In(s.loc))
		}
	}
	return out
}

// matches evaluates the bit sets on a reading directly, independently of
// robfig's Next.
func matches(s *Spec, w time.Time) bool {
	b := &s.sched
	has := func(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }
	dom, dow := has(b.Dom, w.Day()), has(b.Dow, int(w.Weekday()))
	day := dom || dow
	if b.Dom&starBit != 0 || b.Dow&starBit != 0 {
		day = dom && dow
	}
	return has(b.Second, w.Second()) && has(b.Minute, w.Minute()) && has(b.Hour, w.Hour()) && day && has(b.Month, int(w.Month()))
}

// TestUTCMatchesRobfig: without daylight saving our Next must be robfig's.
func TestUTCMatchesRobfig(t *testing.T) {
	exprs := []string{
		"* * * * *", "0 3 * * *", "*/7 */5 * * *", "0 0 29 2 *", "0 0 31 * *", "0 12 * * mon-fri",
		"15 10 1,15 * 0", "*/10 * * * * *", "0 0 0 1 1 *", "30 2 15 jan-jun/2 ?", "0 0 30 2 1",
		"@yearly", "@monthly", "@weekly", "@daily", "@hourly",
	}
	for _, expr := range exprs {
		s := mustParse(t, expr, "")
		r, err := parser.Parse("CRON_TZ=UTC " + expr)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			after := time.Unix(946684800+int64(i)*7919*3607, int64(i)*1e7).UTC()
			got, want := s.Next(after), r.Next(after)
			if got.IsZero() || !got.After(after) {
				t.Errorf("%q Next(%v) = %v", expr, after, got)
			}
			if want.IsZero() {
				continue // robfig gave up after five years (Feb 29 across 2100)
			}
			if !got.Equal(want) {
				t.Errorf("%q Next(%v) = %v, robfig %v", expr, after, got, want)
			}
		}
	}
}

// TestRobfigQuirks records what robfig's own Next does at transitions, so that
// an upgrade that changes it is noticed. These are the reasons for next.go.
func TestRobfigQuirks(t *testing.T) {
	next := func(zone, expr, from string, n int) []string {
		r, err := parser.Parse("CRON_TZ=" + zone + " " + expr)
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation(zone)
		at := mustTime(t, from, loc)
		var out []string
		for i := 0; i < n; i++ {
			at = r.Next(at)
			out = append(out, at.In(loc).Format("2006-01-02 15:04:05 MST"))
		}
		return out
	}
	checks := []struct {
		what string
		got  []string
		want []string
	}{
		{"drops the tick in a skipped hour",
			next("America/New_York", "30 2 * * *", "2025-03-08 12:00", 2),
			[]string{"2025-03-10 02:30:00 EDT", "2025-03-11 02:30:00 EDT"}},
		{"runs a daily tick twice in a repeated hour",
			next("America/New_York", "30 1 * * *", "2025-11-01 12:00", 2),
			[]string{"2025-11-02 01:30:00 EDT", "2025-11-02 01:30:00 EST"}},
		{"returns a time outside the hour field at a half-hour transition",
			next("Australia/Lord_Howe", "45 1 * * *", "2025-10-05 01:46", 1),
			[]string{"2025-10-05 02:45:00 +11"}},
		{"returns a Sunday for a Saturday schedule when midnight is skipped",
			next("America/Santiago", "0 5 * * 6", "2025-09-06 06:00", 1),
			[]string{"2025-09-07 05:00:00 -03"}},
		{"drops @daily when midnight is skipped",
			next("America/Santiago", "@daily", "2025-09-06 12:00", 1),
			[]string{"2025-09-08 00:00:00 -03"}},
	}
	for _, c := range checks {
		if !equalStrings(c.got, c.want) {
			t.Errorf("robfig no longer %s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// Searches give up after five years, losing Feb 29 across 2100.
	r, _ := parser.Parse("CRON_TZ=UTC 0 0 29 2 *")
	if got := r.Next(time.Date(2096, 3, 1, 0, 0, 0, 0, time.UTC)); !got.IsZero() {
		t.Errorf("robfig now finds %v for Feb 29 after 2096", got)
	}
	// @every counts from the time asked, and clamps sub-second intervals.
	e, _ := parser.Parse("@every 500ms")
	if d := e.(cron.ConstantDelaySchedule).Delay; d != time.Second {
		t.Errorf("robfig @every 500ms = %v", d)
	}
	// CRON_TZ= with nothing after it panics inside robfig.
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("robfig no longer panics on a bare CRON_TZ=UTC")
			}
		}()
		_, _ = parser.Parse("CRON_TZ=UTC")
	}()
}

func TestLeapDayAcross2100(t *testing.T) {
	s := mustParse(t, "0 0 29 2 *", "Europe/Berlin")
	from := time.Date(2096, 3, 1, 0, 0, 0, 0, time.UTC)
	want := []string{"2104-02-29 00:00:00 CET", "2108-02-29 00:00:00 CET"}
	if got := formatTimes(s.NextN(from, 2)); !equalStrings(got, want) {
		t.Errorf("NextN = %v, want %v", got, want)
	}
}

// TestFarFutureLeapYearEnd crosses the last day of leap years after 2037, where
// Go's ZoneBounds reports a period that ends before the instant asked about.
func TestFarFutureLeapYearEnd(t *testing.T) {
	for _, tt := range []struct{ zone, expr, from string }{
		{"Europe/Berlin", "0 * * * *", "2096-12-30 22:30"},
		{"Europe/Berlin", "@daily", "2040-12-30 12:00"},
		{"Australia/Sydney", "0 */6 * * *", "2044-12-30 12:00"},
		{"America/New_York", "30 2 * * *", "2048-12-30 12:00"},
	} {
		s := mustParse(t, tt.expr, tt.zone)
		from := mustTime(t, tt.from, s.Location())
		got := s.NextN(from, 60)
		if len(got) != 60 {
			t.Errorf("%s %q from %s: %d ticks", tt.zone, tt.expr, tt.from, len(got))
			continue
		}
		// No transitions around new year in these zones, so the wall-clock
		// readings are those of the same schedule in UTC, started from the same
		// reading.
		utc := mustParse(t, tt.expr, "")
		want := utc.NextN(from.Add(time.Duration(offset(from))*time.Second), 60)
		for i := range got {
			if w := got[i].Add(time.Duration(offset(got[i])) * time.Second).UTC(); !w.Equal(want[i]) {
				t.Errorf("%s %q tick %d = %v, want reading %v", tt.zone, tt.expr, i, got[i], want[i])
				break
			}
		}
	}
}

func offset(t time.Time) int {
	_, off := t.Zone()
	return off
}

func TestNextStrictlyAfterAndInLocation(t *testing.T) {
	s := mustParse(t, "0 3 * * *", "Europe/Berlin")
	tick := time.Date(2025, 6, 1, 3, 0, 0, 0, s.Location())
	if got := s.Next(tick); !got.Equal(tick.AddDate(0, 0, 1)) {
		t.Errorf("Next(tick) = %v, want the following day", got)
	}
	if got := s.Next(tick.Add(-time.Nanosecond)); !got.Equal(tick) {
		t.Errorf("Next(tick-1ns) = %v, want %v", got, tick)
	}
	// A time in another zone is the same instant; the answer is in the schedule's.
	got := s.Next(tick.Add(-time.Hour).UTC())
	if !got.Equal(tick) || got.Location() != s.Location() {
		t.Errorf("Next = %v (%v), want %v in Europe/Berlin", got, got.Location(), tick)
	}
}

func TestEveryAnchoredToEpoch(t *testing.T) {
	s := mustParse(t, "@every 90s", "America/New_York")
	from := time.Date(2025, 1, 1, 0, 0, 10, 500, time.UTC)
	got := s.NextN(from, 3)
	for i, g := range got {
		if g.Unix()%90 != 0 {
			t.Errorf("tick %d = %v is not a multiple of 90s since the epoch", i, g)
		}
		if i > 0 && g.Sub(got[i-1]) != 90*time.Second {
			t.Errorf("ticks %d and %d are %v apart", i-1, i, g.Sub(got[i-1]))
		}
	}
	if !got[0].After(from) || got[0].Sub(from) > 90*time.Second {
		t.Errorf("first tick %v is not the next one after %v", got[0], from)
	}
	// Asking from any moment between two ticks gives the same next tick.
	if a, b := s.Next(got[0].Add(-89*time.Second)), s.Next(got[0].Add(-time.Second)); !a.Equal(got[0]) || !b.Equal(got[0]) {
		t.Errorf("Next depends on the moment asked: %v, %v, want %v", a, b, got[0])
	}
	// Before the epoch, too.
	if g := s.Next(time.Unix(-100, 0)); g.Unix() != -90 {
		t.Errorf("Next(-100s) = %d, want -90", g.Unix())
	}
}

func TestNextN(t *testing.T) {
	s := mustParse(t, "*/20 9-10 * * mon", "Europe/Berlin")
	from := time.Date(2025, 6, 2, 9, 30, 0, 0, s.Location()) // a Monday
	want := []string{
		"2025-06-02 09:40:00 CEST", "2025-06-02 10:00:00 CEST", "2025-06-02 10:20:00 CEST",
		"2025-06-02 10:40:00 CEST", "2025-06-09 09:00:00 CEST",
	}
	got := s.NextN(from, 5)
	if !equalStrings(formatTimes(got), want) {
		t.Errorf("NextN = %v, want %v", formatTimes(got), want)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].After(got[i-1]) || !s.Next(got[i-1]).Equal(got[i]) {
			t.Errorf("NextN not the chain of Next at %d", i)
		}
	}
	if got := s.NextN(from, 0); got != nil {
		t.Errorf("NextN(0) = %v", got)
	}
	if got := s.NextN(from, -1); got != nil {
		t.Errorf("NextN(-1) = %v", got)
	}
}

func TestBetween(t *testing.T) {
	s := mustParse(t, "0 * * * *", "")
	at := func(h int) time.Time { return time.Date(2025, 6, 1, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		from, to time.Time
		max      int
		want     int
		first    time.Time
	}{
		{at(1), at(5), 100, 4, at(2)}, // from excluded, to included
		{at(1).Add(-time.Second), at(5).Add(-time.Second), 100, 4, at(1)},
		{at(1), at(5), 2, 2, at(2)}, // the earliest max of them
		{at(1), at(1), 100, 0, time.Time{}},
		{at(5), at(1), 100, 0, time.Time{}},
		{at(1), at(5), 0, 0, time.Time{}},
	}
	for i, tt := range tests {
		got := s.Between(tt.from, tt.to, tt.max)
		if len(got) != tt.want {
			t.Errorf("%d: Between = %v, want %d ticks", i, got, tt.want)
			continue
		}
		if len(got) > 0 && !got[0].Equal(tt.first) {
			t.Errorf("%d: first tick %v, want %v", i, got[0], tt.first)
		}
	}
	// Between across a fall-back agrees with NextN.
	ny := mustParse(t, "*/30 * * * *", "America/New_York")
	from := time.Date(2025, 11, 2, 0, 0, 0, 0, ny.Location())
	got := ny.Between(from, from.Add(4*time.Hour), 100)
	if len(got) != 8 || !equalTimes(got, ny.NextN(from, 8)) {
		t.Errorf("Between across fall-back = %v", formatTimes(got))
	}
}

// TestNeverFiresAgreesWithSearch checks the static never-fires rule against a
// brute search over a 400-year Gregorian cycle of days.
func TestNeverFiresAgreesWithSearch(t *testing.T) {
	doms := []string{"29", "30", "31", "30,31", "1", "*", "*/10", "31/2"}
	months := []string{"2", "4", "2,4", "4,6,9,11", "1", "*", "feb-apr"}
	dows := []string{"*", "?", "1", "0-6", "*/2"}
	for _, d := range doms {
		for _, m := range months {
			for _, w := range dows {
				expr := fmt.Sprintf("0 0 %s %s %s", d, m, w)
				s, err := Parse(expr, "")
				fires := false
				b := cron.SpecSchedule{}
				if err == nil {
					b = s.sched
				} else {
					bits := make([]uint64, 3)
					bits[0], _ = parseField(d, domField)
					bits[1], _ = parseField(m, monthField)
					bits[2], _ = parseField(w, dowField)
					b = cron.SpecSchedule{Second: 1, Minute: 1, Hour: 1, Dom: bits[0], Month: bits[1], Dow: bits[2]}
				}
				spec := &Spec{sched: b}
				for day := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() < 2400; day = day.AddDate(0, 0, 1) {
					if matches(spec, day) {
						fires = true
						break
					}
				}
				if fires != (err == nil) {
					t.Errorf("%q: fires=%v, Parse error %v", expr, fires, err)
				}
			}
		}
	}
}

func BenchmarkNext(b *testing.B) {
	for _, c := range []struct{ expr, zone string }{
		{"0 3 * * *", "Europe/Berlin"}, {"*/10 * * * * *", "America/New_York"},
		{"0 0 29 2 *", "UTC"}, {"@every 30s", "UTC"},
	} {
		s := mustParse(b, c.expr, c.zone)
		from := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
		b.Run(c.expr, func(b *testing.B) {
			for b.Loop() {
				s.Next(from)
			}
		})
	}
}
