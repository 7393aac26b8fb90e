package cronspec

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzZones is indexed by the fuzzer's zone byte: zones with ordinary, half-hour,
// midnight and 45-minute-offset transitions, a skipped day and a two-hour shift.
var fuzzZones = []string{
	"", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
	"Pacific/Apia", "Asia/Kathmandu", "Pacific/Chatham", "America/Havana", "Antarctica/Troll",
}

// FuzzParse feeds arbitrary expressions to Parse and, for those it accepts,
// checks the answers of Next, NextN and Between against their contracts at an
// arbitrary moment between 1900 and 2200. Run with
//
//	go test -fuzz FuzzParse ./internal/scheduler/cronspec
//
// Inputs that once failed are kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"0 3 * * *", "30 2 * * *", "30 1 * * *", "0 * * * *", "*/15 * * * *", "* * * * *",
		"*/10 * * * * *", "0 0 0 1 1 *", "0 0 29 2 *", "0 0 30 2 *", "0 0 30 2 1", "0 0 31 4 *",
		"0-30/10 9-17 * JAN,jul ?", "5/15 * ? * *", "0 0 * * mon-fri", "0 0 1,15 * 0",
		"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
		"@every 30s", "@every 1h30m", "@every 500ms", "@every 1.5s", "@every -1s", "@every",
		"CRON_TZ=Europe/Berlin 0 3 * * *", "TZ=America/New_York\t30 1 * * *", "CRON_TZ=UTC",
		"CRON_TZ= * * * * *", "cron_tz=UTC * * * * *", "0 25 * * *", "*-5 * * * *", "0 0 , * *",
		"1,,2 * * * *", "*/0 * * * *", "*/90 * * * *", "+5 * * * *", "-5 * * * *", "5-1 * * * *",
		"1-2-3 * * * *", "*/5/2 * * * *", "0 0 * * 7", "? * * * *", "", " ", "@", "@every 1 h",
		"99999999999999999999 * * * *", "0 0 31 2,4,6,9,11 *", "* * * * * * *", "= * * * *",
	}
	for i, s := range seeds {
		f.Add(s, uint8(i), int64(i)*987654321)
	}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, after int64) {
		tz := fuzzZones[int(zone)%len(fuzzZones)]
		s, err := Parse(expr, tz)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse(%q, %q) error %T is not *Error: %v", expr, tz, err, err)
			}
			if !strings.HasPrefix(err.Error(), "parsing cron ") || perr.Reason == "" {
				t.Fatalf("Parse(%q, %q) error %q", expr, tz, err)
			}
			if perr.Field < 0 || perr.Field > 6 || (perr.Field == 0) != (perr.FieldName == "") {
				t.Fatalf("Parse(%q, %q) error field %d %q", expr, tz, perr.Field, perr.FieldName)
			}
			return
		}

		// String is a normal form: it parses back to itself and the same ticks.
		again, err := Parse(s.String(), "")
		if err != nil {
			t.Fatalf("Parse(%q, %q).String() = %q does not parse: %v", expr, tz, s.String(), err)
		}
		if again.String() != s.String() || again.Location().String() != s.Location().String() {
			t.Fatalf("round trip of %q: %q", s.String(), again.String())
		}

		// Whatever we accept, robfig accepts, with the same meaning.
		r, err := parser.Parse(s.canon)
		if err != nil {
			t.Fatalf("robfig rejects %q, which Parse accepted: %v", s.canon, err)
		}

		// after is seconds since the epoch, folded into 1900-01-01 .. 2200-01-01 UTC.
		const lo, span = -2208988800, 9467107200
		sec := after
		if sec < lo || sec >= lo+span {
			sec = lo + int64(uint64(after)%span)
		}
		at := time.Unix(sec, int64(uint64(after)%1e9)).In(s.Location())

		next := s.Next(at)
		if next.IsZero() {
			t.Fatalf("%q Next(%v) is zero, but Parse rejects schedules that never fire", s, at)
		}
		if !next.After(at) {
			t.Fatalf("%q Next(%v) = %v, not after", s, at, next)
		}
		if next.Nanosecond() != 0 || next.Location() != s.Location() {
			t.Fatalf("%q Next(%v) = %v: not a whole second in the schedule's zone", s, at, next)
		}
		if n2 := again.Next(at); !n2.Equal(next) {
			t.Fatalf("%q and its round trip disagree: %v, %v", s, next, n2)
		}
		if s.Location() == time.UTC && s.every == 0 {
			if want := r.Next(at); !want.IsZero() && !want.Equal(next) {
				t.Fatalf("%q Next(%v) = %v, robfig in UTC says %v", s, at, next, want)
			}
		}
		if s.every == 0 && !readingMatches(s, next) && !gapEnd(next) {
			t.Fatalf("%q Next(%v) = %v: reading does not match and is not the end of a gap", s, at, next)
		}

		ticks := s.NextN(at, 5)
		if len(ticks) != 5 || !ticks[0].Equal(next) {
			t.Fatalf("%q NextN(%v, 5) = %v", s, at, ticks)
		}
		for i := 1; i < len(ticks); i++ {
			if !ticks[i].After(ticks[i-1]) {
				t.Fatalf("%q NextN(%v, 5) = %v: not increasing", s, at, ticks)
			}
		}
		if b := s.Between(at, ticks[4], 10); !equalTimes(b, ticks) {
			t.Fatalf("%q Between(%v, %v) = %v, NextN gave %v", s, at, ticks[4], b, ticks)
		}
		if b := s.Between(ticks[0], ticks[4], 2); !equalTimes(b, ticks[1:3]) {
			t.Fatalf("%q Between(%v, %v, 2) = %v, want %v", s, ticks[0], ticks[4], b, ticks[1:3])
		}
	})
}

// readingMatches reports whether t's wall-clock reading in the schedule's zone
// matches every field.
func readingMatches(s *Spec, t time.Time) bool {
	l := t.In(s.loc)
	return matches(s, time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC))
}

// gapEnd reports whether t is the first instant after clocks sprang forward.
func gapEnd(t time.Time) bool {
	_, before := t.Add(-time.Second).Zone()
	_, now := t.Zone()
	return now > before
}
