package cronspec

import (
	"math"
	"time"
)

// horizonYears bounds every search. A valid schedule fires at least every eight
// years (Feb 29 skips 2100), and Parse rejects those that never fire, so the bound
// only matters near the ends of time.Time's range.
const horizonYears = 12

// maxZoneJump is more than any UTC-offset change in the zone database (Samoa's
// skipped day, Alaska's 1867 repeated one), so looking this far back finds every
// earlier instant that showed the same wall-clock reading.
const maxZoneJump = 26 * time.Hour

// Next returns the first run time strictly after the given time, in the
// schedule's location, following the daylight-saving rules of the package
// documentation. It returns the zero time only when no run exists within the
// search horizon, which for a parsed Spec happens only at the far ends of
// time.Time's range.
func (s *Spec) Next(after time.Time) time.Time {
	if s.every > 0 {
		return s.nextEvery(after)
	}
	return s.nextCron(after)
}

// NextN returns the next n run times after the given time, in order.
func (s *Spec) NextN(after time.Time, n int) []time.Time {
	if n <= 0 {
		return nil
	}
	out := make([]time.Time, 0, n)
	for t := after; len(out) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Between returns the run times in (from, to], at most max of them (the earliest
// ones); max must be positive, since a per-second schedule over a long outage
// would otherwise be millions of ticks. A scheduler uses it to find the ticks it
// missed while down.
func (s *Spec) Between(from, to time.Time, max int) []time.Time {
	var out []time.Time
	for t := from; len(out) < max; {
		t = s.Next(t)
		if t.IsZero() || t.After(to) {
			break
		}
		out = append(out, t)
	}
	return out
}

// nextEvery counts intervals from the Unix epoch rather than from the given time
// (as robfig does), so that the ticks are a property of the schedule: every node,
// and every call to Next from any moment, agrees on them.
func (s *Spec) nextEvery(after time.Time) time.Time {
	d := int64(s.every / time.Second)
	u := after.Unix() // floor: Unix drops the non-negative nanoseconds
	q := u / d
	if u%d < 0 {
		q--
	}
	if q >= math.MaxInt64/d-1 {
		return time.Time{}
	}
	return time.Unix((q+1)*d, 0).In(s.loc)
}

// nextCron walks the location's zone periods (stretches of constant UTC offset,
// from time.Time.ZoneBounds). Inside one period the wall clock is the instant plus
// a fixed offset, so the next matching wall-clock reading can be found with
// robfig's Next in UTC, which has no daylight saving to trip over. Between
// periods are the two cases robfig's own Next gets wrong (it drops ticks in a
// skipped hour, runs hour-specific ticks twice in a repeated one, and near
// transitions at midnight or of 30 minutes can return a time in the wrong hour or
// on the wrong weekday):
//
//   - entering a period whose offset is larger skips wall-clock readings; if any
//     skipped reading matches, the schedule runs once at the period's start;
//   - a match whose reading an earlier period already showed is a repeat, and
//     runs only if the hour field is every hour.
func (s *Spec) nextCron(after time.Time) time.Time {
	t := time.Unix(after.Unix()+1, 0).In(s.loc) // first whole second after `after`
	limit := t.AddDate(horizonYears, 0, 0)
	for t.Before(limit) {
		start, end := zonePeriod(t)
		_, off := t.Zone()
		if t.Equal(start) && s.gapMatches(start, off) {
			return t
		}
		before := wallClock(limit, off)
		if !end.IsZero() && end.Before(limit) {
			before = wallClock(end, off)
		}
		for from := wallClock(t, off); ; {
			w, ok := s.nextReading(from, before)
			if !ok {
				break
			}
			u := time.Unix(w.Unix()-int64(off), 0).In(s.loc)
			if s.allHours || !shownEarlier(u, w) {
				return u
			}
			from = w.Add(time.Second)
		}
		if end.IsZero() {
			break
		}
		t = end
	}
	return time.Time{}
}

// zonePeriod is time.Time.ZoneBounds with a guard against a Go bug: past the
// last transition listed in the zone database (about 2037) Go derives periods from
// the zone's rule, and in a leap year it ends the year's last period a day early
// (year start + 365 days, time/zoneinfo.go tzset). On that Dec 31 the period it
// reports ends before t, and walking to its end would never move forward. The
// period really runs to the next UTC new year, where Go starts the next year's
// rule; if the offset there is not the same, fall back to a one-second period,
// which is slow but cannot be wrong.
func zonePeriod(t time.Time) (start, end time.Time) {
	start, end = t.ZoneBounds()
	if end.IsZero() || end.After(t) {
		return start, end
	}
	_, off := t.Zone()
	end = time.Date(t.UTC().Year()+1, time.January, 1, 0, 0, 0, 0, time.UTC).In(t.Location())
	if _, endOff := end.Add(-time.Second).Zone(); endOff != off {
		end = t.Add(time.Second)
	}
	return start, end
}

// wallClock returns the reading of a clock at UTC offset off seconds at instant t,
// written as a UTC time.
func wallClock(t time.Time, off int) time.Time {
	return time.Unix(t.Unix()+int64(off), 0).UTC()
}

// gapMatches reports whether a zone period beginning at start with offset off
// skipped a wall-clock reading the schedule matches.
func (s *Spec) gapMatches(start time.Time, off int) bool {
	_, prevOff := start.Add(-time.Second).Zone()
	if off <= prevOff {
		return false
	}
	_, ok := s.nextReading(wallClock(start, prevOff), wallClock(start, off))
	return ok
}

// nextReading returns the first wall-clock reading at or after from and before
// `before` that the expression matches; both are UTC-written readings.
func (s *Spec) nextReading(from, before time.Time) (time.Time, bool) {
	t := from.Add(-time.Second) // robfig's Next is strictly after
	for t.Before(before) {
		if w := s.sched.Next(t); !w.IsZero() {
			return w, w.Before(before)
		}
		// robfig gives up after about five years; carry on from there.
		t = time.Date(t.Year()+5, time.January, 1, 0, 0, 0, 0, time.UTC).Add(-time.Second)
	}
	return time.Time{}, false
}

// shownEarlier reports whether wall-clock reading w, shown at instant u, was
// already shown at an earlier instant: the second pass through a repeated hour.
func shownEarlier(u, w time.Time) bool {
	start, _ := u.ZoneBounds()
	for !start.IsZero() && u.Sub(start) < maxZoneJump {
		prev := start.Add(-time.Second)
		prevStart, _ := prev.ZoneBounds()
		_, prevOff := prev.Zone()
		// The instant at which the previous period's clock read w.
		at := w.Unix() - int64(prevOff)
		if at < start.Unix() && (prevStart.IsZero() || at >= prevStart.Unix()) {
			return true
		}
		start = prevStart
	}
	return false
}
