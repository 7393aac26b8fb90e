package cronspec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
)

// Spec is a parsed schedule: an expression bound to a location. It is immutable
// and safe for concurrent use.
type Spec struct {
	expr  string         // as given to Parse
	canon string         // normalized expression without any timezone prefix
	loc   *time.Location // whose wall clock the expression reads

	// For cron expressions and the calendar descriptors: robfig's bit sets with
	// Location set to UTC. They are only ever searched over wall-clock readings
	// written as UTC times, where robfig's Next is exact; the mapping between
	// readings and instants, where daylight saving lives, is ours (next.go).
	sched    cron.SpecSchedule
	allHours bool // hour field is every hour: runs in both copies of a repeated hour

	every time.Duration // for @every: the interval, a whole number of seconds
}

// parser accepts what README.md promises: five fields, an optional leading seconds
// field, and descriptors.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// calendarDescriptors are robfig's fixed descriptors, each equivalent to a
// five-field expression.
var calendarDescriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// Parse reads a cron expression and the timezone it runs in ("" means UTC, unless
// the expression starts with CRON_TZ=Area/City or TZ=Area/City, which is allowed
// only when timezone is ""). Every rejection is an *Error.
func Parse(expr, timezone string) (*Spec, error) {
	fail := func(field int, name, reason string, err error) error {
		return &Error{Expr: expr, Timezone: timezone, Field: field, FieldName: name, Reason: reason, Err: err}
	}

	body := strings.TrimSpace(expr)
	if body == "" {
		return nil, fail(0, "", "empty expression", nil)
	}

	zone := timezone
	if prefix := tzPrefix(body); prefix != "" {
		// Handled here, not by robfig: it panics on "CRON_TZ=UTC" with nothing
		// after it and only splits on a space, not a tab.
		tok, rest := body, ""
		if i := strings.IndexFunc(body, unicode.IsSpace); i >= 0 {
			tok, rest = body[:i], strings.TrimSpace(body[i:])
		}
		if timezone != "" {
			return nil, fail(0, "", fmt.Sprintf("timezone given twice, as %s in the expression and as %q; give it once", tok, timezone), nil)
		}
		if rest == "" {
			return nil, fail(0, "", fmt.Sprintf("no schedule after %s", tok), nil)
		}
		zone = tok[len(prefix):]
		if zone == "" {
			// robfig would take this as UTC, which the writer hardly meant.
			return nil, fail(0, "", fmt.Sprintf("%s names no timezone", prefix), nil)
		}
		body = rest
	}
	loc, err := loadLocation(zone)
	if err != nil {
		return nil, fail(0, "", err.Error(), errors.Unwrap(err))
	}

	s := &Spec{expr: expr, loc: loc}
	fields := strings.Fields(body)
	if strings.HasPrefix(fields[0], "@") {
		if err := s.parseDescriptor(fields); err != nil {
			return nil, fail(0, "", err.Error(), errors.Unwrap(err))
		}
		return s, nil
	}

	if strings.Contains(fields[0], "=") {
		return nil, fail(0, "", fmt.Sprintf("unknown prefix %q; a timezone prefix is written CRON_TZ=Area/City", fields[0]), nil)
	}
	var defs []fieldDef
	switch len(fields) {
	case 5:
		defs = fiveFields
	case 6:
		defs = sixFields
	default:
		return nil, fail(0, "", fmt.Sprintf("expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found %d", len(fields)), nil)
	}
	bits := make([]uint64, len(fields))
	for i, f := range fields {
		if bits[i], err = parseField(f, defs[i]); err != nil {
			return nil, fail(i+1, defs[i].name, err.Error(), nil)
		}
	}
	n := len(fields)
	dom, month, dow := bits[n-3], bits[n-2], bits[n-1]
	if neverFires(dom, month, dow) {
		reason := fmt.Sprintf("no day in %q exists in month %q, so the schedule never fires", fields[n-3], fields[n-2])
		if dow&0x7f == 0 {
			reason = "no weekday matches, so the schedule never fires"
		}
		return nil, fail(n-2, domField.name, reason, nil)
	}

	s.canon = strings.Join(fields, " ")
	sched, err := parser.Parse(s.canon)
	if err != nil {
		// Our checks are stricter than robfig's, so this means the two disagree;
		// still say which field robfig choked on.
		field, name := locateRobfigError(fields, defs)
		return nil, fail(field, name, err.Error(), err)
	}
	if err := s.setSchedule(sched); err != nil {
		return nil, fail(0, "", err.Error(), nil)
	}
	return s, nil
}

func tzPrefix(body string) string {
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if strings.HasPrefix(body, p) {
			return p
		}
	}
	return ""
}

// loadLocation resolves an IANA zone name. "Local" is refused because it would
// make a stored schedule mean whatever zone the server happens to run in. The
// character check keeps user input from probing odd paths under the zoneinfo
// directory; every IANA name passes it.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("timezone \"Local\" is not allowed; name an IANA zone such as \"Europe/Berlin\"")
	}
	if !validZoneName(name) {
		return nil, fmt.Errorf("unknown timezone %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &zoneError{name: name, err: err}
	}
	return loc, nil
}

// zoneError keeps time.LoadLocation's error reachable by errors.Unwrap while
// printing one short message.
type zoneError struct {
	name string
	err  error
}

func (e *zoneError) Error() string { return fmt.Sprintf("unknown timezone %q", e.name) }
func (e *zoneError) Unwrap() error { return e.err }

func validZoneName(name string) bool {
	if len(name) > 64 || name[0] == '/' || strings.Contains(name, "..") {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '/', c == '_', c == '-', c == '+':
		default:
			return false
		}
	}
	return true
}

// parseDescriptor handles "@daily" and friends and "@every <duration>".
func (s *Spec) parseDescriptor(fields []string) error {
	name := fields[0]
	switch {
	case calendarDescriptors[name]:
		if len(fields) != 1 {
			return fmt.Errorf("%s takes no argument", name)
		}
		s.canon = name
	case name == "@every":
		if len(fields) != 2 {
			return fmt.Errorf("@every takes one duration, as in \"@every 30s\"")
		}
		d, err := time.ParseDuration(fields[1])
		if err != nil {
			return &wrapped{msg: fmt.Sprintf("@every: %q is not a duration (write it like 30s, 5m or 1h30m)", fields[1]), err: err}
		}
		// robfig would quietly turn these into one second, or drop the fraction.
		if d < time.Second {
			return fmt.Errorf("@every %s: interval must be at least 1s", fields[1])
		}
		if d%time.Second != 0 {
			return fmt.Errorf("@every %s: interval must be a whole number of seconds", fields[1])
		}
		s.canon = "@every " + formatDuration(d)
	default:
		return fmt.Errorf("unknown descriptor %q; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>", name)
	}

	sched, err := parser.Parse(s.canon)
	if err != nil {
		return &wrapped{msg: err.Error(), err: err}
	}
	return s.setSchedule(sched)
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

func (s *Spec) setSchedule(sched cron.Schedule) error {
	switch v := sched.(type) {
	case *cron.SpecSchedule:
		s.sched = *v
		s.sched.Location = time.UTC
		const hours = 1<<24 - 1
		s.allHours = v.Hour&hours == hours
	case cron.ConstantDelaySchedule:
		s.every = v.Delay
	default:
		return fmt.Errorf("unexpected schedule type %T", sched)
	}
	return nil
}

// locateRobfigError finds the first field robfig rejects on its own, by parsing
// each field with a one-field parser, since robfig's whole-expression message
// names neither the field nor its position.
func locateRobfigError(fields []string, defs []fieldDef) (int, string) {
	opts := map[string]cron.ParseOption{
		"second": cron.Second, "minute": cron.Minute, "hour": cron.Hour,
		"day of month": cron.Dom, "month": cron.Month, "day of week": cron.Dow,
	}
	for i, f := range fields {
		if _, err := cron.NewParser(opts[defs[i].name]).Parse(f); err != nil {
			return i + 1, defs[i].name
		}
	}
	return 0, ""
}

// formatDuration writes whole-second durations without zero units ("1h", not
// "1h0m0s"), so that String reads as a person would write it.
func formatDuration(d time.Duration) string {
	var b strings.Builder
	h, m, sec := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	if h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "h")
	}
	if m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "m")
	}
	if sec > 0 || b.Len() == 0 {
		b.WriteString(strconv.FormatInt(sec, 10) + "s")
	}
	return b.String()
}

// Expr returns the expression exactly as given to Parse.
func (s *Spec) Expr() string { return s.expr }

// Location returns the zone whose wall clock the schedule reads.
func (s *Spec) Location() *time.Location { return s.loc }

// String returns the schedule in a normal form that Parse(String(), "") reads back
// to the same schedule: fields separated by single spaces, the location as a
// CRON_TZ= prefix unless it is UTC.
func (s *Spec) String() string {
	if s.loc == time.UTC {
		return s.canon
	}
	return "CRON_TZ=" + s.loc.String() + " " + s.canon
}
