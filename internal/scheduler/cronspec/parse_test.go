package cronspec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		expr, tz   string
		wantString string
	}{
		{"0 3 * * *", "", "0 3 * * *"},
		{"0 3 * * *", "UTC", "0 3 * * *"},
		{"0 3 * * *", "Europe/Berlin", "CRON_TZ=Europe/Berlin 0 3 * * *"},
		{"  0   3\t* *  * ", "", "0 3 * * *"},
		{"CRON_TZ=America/New_York 30 1 * * *", "", "CRON_TZ=America/New_York 30 1 * * *"},
		{"TZ=Asia/Tokyo\t0 9 * * mon-fri", "", "CRON_TZ=Asia/Tokyo 0 9 * * mon-fri"},
		{"CRON_TZ=UTC @daily", "", "@daily"},
		{"*/10 * * * * *", "", "*/10 * * * * *"},
		{"0 0 0 1 1 *", "", "0 0 0 1 1 *"},
		{"0-30/10 9-17 * JAN,jul ?", "", "0-30/10 9-17 * JAN,jul ?"},
		{"5/15 * ? * *", "", "5/15 * ? * *"},
		{"0 0 29 2 *", "", "0 0 29 2 *"},
		{"0 0 30 2 1", "", "0 0 30 2 1"}, // both day fields restricted: Mondays in February
		{"0 0 31 2,3 *", "", "0 0 31 2,3 *"},
		{"@yearly", "", "@yearly"},
		{"@annually", "", "@annually"},
		{"@monthly", "", "@monthly"},
		{"@weekly", "", "@weekly"},
		{"@daily", "", "@daily"},
		{"@midnight", "", "@midnight"},
		{"@hourly", "Europe/Berlin", "CRON_TZ=Europe/Berlin @hourly"},
		{"@every 30s", "", "@every 30s"},
		{"@every 90s", "", "@every 1m30s"},
		{"@every 1h0m0s", "", "@every 1h"},
		{"@every  2h30m ", "", "@every 2h30m"},
		{"@every 1s", "", "@every 1s"},
	}
	for _, tt := range tests {
		s, err := Parse(tt.expr, tt.tz)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.expr, tt.tz, err)
			continue
		}
		if got := s.String(); got != tt.wantString {
			t.Errorf("Parse(%q, %q).String() = %q, want %q", tt.expr, tt.tz, got, tt.wantString)
		}
		if s.Expr() != tt.expr {
			t.Errorf("Expr() = %q, want %q", s.Expr(), tt.expr)
		}
		again, err := Parse(s.String(), "")
		if err != nil || again.String() != s.String() || again.Location().String() != s.Location().String() {
			t.Errorf("round trip of %q: %v, %v", s.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr, tz string
		want     string
		field    int
	}{
		{"0 25 * * *", "", `parsing cron "0 25 * * *": field 2 (hour): value 25 out of range 0-23`, 2},
		{"", "", `parsing cron "": empty expression`, 0},
		{"   ", "", `parsing cron "   ": empty expression`, 0},
		{"* * * *", "", `parsing cron "* * * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found 4`, 0},
		{"* * * * * * *", "", `parsing cron "* * * * * * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), found 7`, 0},
		{"60 * * * *", "", `parsing cron "60 * * * *": field 1 (minute): value 60 out of range 0-59`, 1},
		{"60 * * * * *", "", `parsing cron "60 * * * * *": field 1 (second): value 60 out of range 0-59`, 1},
		{"0 60 * * * *", "", `parsing cron "0 60 * * * *": field 2 (minute): value 60 out of range 0-59`, 2},
		{"0 0 0 * *", "", `parsing cron "0 0 0 * *": field 3 (day of month): value 0 out of range 1-31`, 3},
		{"0 0 32 * *", "", `parsing cron "0 0 32 * *": field 3 (day of month): value 32 out of range 1-31`, 3},
		{"0 0 * 13 *", "", `parsing cron "0 0 * 13 *": field 4 (month): value 13 out of range 1-12`, 4},
		{"0 0 * foo *", "", `parsing cron "0 0 * foo *": field 4 (month): "foo" is not a number or month name (jan-dec)`, 4},
		{"0 0 * * 7", "", `parsing cron "0 0 * * 7": field 5 (day of week): value 7 out of range 0-6 (Sunday is 0)`, 5},
		{"0 0 * * monday", "", `parsing cron "0 0 * * monday": field 5 (day of week): "monday" is not a number or day name (sun-sat)`, 5},
		{"0 0 * * 1-8", "", `parsing cron "0 0 * * 1-8": field 5 (day of week): value 8 out of range 0-6`, 5},
		{"x * * * *", "", `parsing cron "x * * * *": field 1 (minute): "x" is not a number`, 1},
		{"+5 * * * *", "", `parsing cron "+5 * * * *": field 1 (minute): "+5" is not a number`, 1},
		{"99999999999999999999999 * * * *", "", `parsing cron "99999999999999999999999 * * * *": field 1 (minute): value 99999999999999999999999 out of range 0-59`, 1},
		{"5-1 * * * *", "", `parsing cron "5-1 * * * *": field 1 (minute): range "5-1" runs backwards (5 is after 1)`, 1},
		{"0 0 * * fri-mon", "", `parsing cron "0 0 * * fri-mon": field 5 (day of week): range "fri-mon" runs backwards (5 is after 1)`, 5},
		{"1-2-3 * * * *", "", `parsing cron "1-2-3 * * * *": field 1 (minute): "1-2-3" has more than one "-"`, 1},
		{"-5 * * * *", "", `parsing cron "-5 * * * *": field 1 (minute): range "-5" has no start (negative numbers are not allowed)`, 1},
		{"5- * * * *", "", `parsing cron "5- * * * *": field 1 (minute): range "5-" has no end`, 1},
		{"*-5 * * * *", "", `parsing cron "*-5 * * * *": field 1 (minute): "*-5": "*" cannot be part of a range`, 1},
		{"*/0 * * * *", "", `parsing cron "*/0 * * * *": field 1 (minute): step 0 out of range 1-59`, 1},
		{"*/90 * * * *", "", `parsing cron "*/90 * * * *": field 1 (minute): step 90 out of range 1-59`, 1},
		{"0 */24 * * *", "", `parsing cron "0 */24 * * *": field 2 (hour): step 24 out of range 1-23`, 2},
		{"*/ * * * *", "", `parsing cron "*/ * * * *": field 1 (minute): "*/" has no step after "/"`, 1},
		{"*/x * * * *", "", `parsing cron "*/x * * * *": field 1 (minute): step "x" is not a number`, 1},
		{"/5 * * * *", "", `parsing cron "/5 * * * *": field 1 (minute): "/5" has no value before "/"`, 1},
		{"*/5/2 * * * *", "", `parsing cron "*/5/2 * * * *": field 1 (minute): "*/5/2" has more than one "/"`, 1},
		{"1,,2 * * * *", "", `parsing cron "1,,2 * * * *": field 1 (minute): empty element in list "1,,2"`, 1},
		{"0 0 , * *", "", `parsing cron "0 0 , * *": field 3 (day of month): empty element in list ","`, 3},
		{"0 1, * * *", "", `parsing cron "0 1, * * *": field 2 (hour): empty element in list "1,"`, 2},
		{"? * * * *", "", `parsing cron "? * * * *": field 1 (minute): "?" is only allowed in day of month and day of week`, 1},
		{"0 0 30 2 *", "", `parsing cron "0 0 30 2 *": field 3 (day of month): no day in "30" exists in month "2", so the schedule never fires`, 3},
		{"0 0 31 apr,jun,sep,nov *", "", `parsing cron "0 0 31 apr,jun,sep,nov *": field 3 (day of month): no day in "31" exists in month "apr,jun,sep,nov", so the schedule never fires`, 3},
		{"0 0 0 30-31 2 ?", "", `parsing cron "0 0 0 30-31 2 ?": field 4 (day of month): no day in "30-31" exists in month "2", so the schedule never fires`, 4},
		{"@dialy", "", `parsing cron "@dialy": unknown descriptor "@dialy"; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>`, 0},
		{"@Daily", "", `parsing cron "@Daily": unknown descriptor "@Daily"; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>`, 0},
		{"@daily 3", "", `parsing cron "@daily 3": @daily takes no argument`, 0},
		{"@every", "", `parsing cron "@every": @every takes one duration, as in "@every 30s"`, 0},
		{"@every 1 h", "", `parsing cron "@every 1 h": @every takes one duration, as in "@every 30s"`, 0},
		{"@every 5", "", `parsing cron "@every 5": @every: "5" is not a duration (write it like 30s, 5m or 1h30m)`, 0},
		{"@every 500ms", "", `parsing cron "@every 500ms": @every 500ms: interval must be at least 1s`, 0},
		{"@every 0s", "", `parsing cron "@every 0s": @every 0s: interval must be at least 1s`, 0},
		{"@every -1m", "", `parsing cron "@every -1m": @every -1m: interval must be at least 1s`, 0},
		{"@every 1.5s", "", `parsing cron "@every 1.5s": @every 1.5s: interval must be a whole number of seconds`, 0},
		{"0 3 * * *", "Europe/Berln", `parsing cron "0 3 * * *": unknown timezone "Europe/Berln"`, 0},
		{"0 3 * * *", "Local", `parsing cron "0 3 * * *": timezone "Local" is not allowed; name an IANA zone such as "Europe/Berlin"`, 0},
		{"0 3 * * *", "../../etc/passwd", `parsing cron "0 3 * * *": unknown timezone "../../etc/passwd"`, 0},
		{"0 3 * * *", "/etc/localtime", `parsing cron "0 3 * * *": unknown timezone "/etc/localtime"`, 0},
		{"0 3 * * *", "Europe/Berlin ", `parsing cron "0 3 * * *": unknown timezone "Europe/Berlin "`, 0},
		{"CRON_TZ=Mars/Olympus 0 3 * * *", "", `parsing cron "CRON_TZ=Mars/Olympus 0 3 * * *": unknown timezone "Mars/Olympus"`, 0},
		{"CRON_TZ=UTC", "", `parsing cron "CRON_TZ=UTC": no schedule after CRON_TZ=UTC`, 0},
		{"CRON_TZ= 0 3 * * *", "", `parsing cron "CRON_TZ= 0 3 * * *": CRON_TZ= names no timezone`, 0},
		{"CRON_TZ=UTC 0 3 * * *", "Europe/Berlin", `parsing cron "CRON_TZ=UTC 0 3 * * *": timezone given twice, as CRON_TZ=UTC in the expression and as "Europe/Berlin"; give it once`, 0},
		{"TZ=Europe/Berlin 0 3 * * *", "Europe/Berlin", `parsing cron "TZ=Europe/Berlin 0 3 * * *": timezone given twice, as TZ=Europe/Berlin in the expression and as "Europe/Berlin"; give it once`, 0},
		{"cron_tz=UTC 0 3 * * *", "", `parsing cron "cron_tz=UTC 0 3 * * *": unknown prefix "cron_tz=UTC"; a timezone prefix is written CRON_TZ=Area/City`, 0},
		{"CRON_TZ=Europe/Berlin 0 25 * * *", "", `parsing cron "CRON_TZ=Europe/Berlin 0 25 * * *": field 2 (hour): value 25 out of range 0-23`, 2},
	}
	for _, tt := range tests {
		s, err := Parse(tt.expr, tt.tz)
		if err == nil {
			t.Errorf("Parse(%q, %q) = %v, want error %q", tt.expr, tt.tz, s, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q, %q) error\n got: %s\nwant: %s", tt.expr, tt.tz, err, tt.want)
		}
		var perr *Error
		if !errors.As(err, &perr) {
			t.Errorf("Parse(%q, %q) error is %T, want *Error", tt.expr, tt.tz, err)
			continue
		}
		if perr.Field != tt.field {
			t.Errorf("Parse(%q, %q) error Field = %d, want %d", tt.expr, tt.tz, perr.Field, tt.field)
		}
		if (perr.Field == 0) != (perr.FieldName == "") {
			t.Errorf("Parse(%q, %q) error Field %d with FieldName %q", tt.expr, tt.tz, perr.Field, perr.FieldName)
		}
		if perr.Expr != tt.expr || perr.Timezone != tt.tz {
			t.Errorf("Parse(%q, %q) error carries %q, %q", tt.expr, tt.tz, perr.Expr, perr.Timezone)
		}
	}
}

func TestErrorUnwrap(t *testing.T) {
	_, err := Parse("0 3 * * *", "Europe/Berln")
	if errors.Unwrap(err) == nil {
		t.Errorf("unknown timezone error should wrap time.LoadLocation's error")
	}
	_, err = Parse("@every 5", "")
	if errors.Unwrap(err) == nil {
		t.Errorf("bad duration error should wrap time.ParseDuration's error")
	}
}

// TestFieldBitsMatchRobfig checks that our field checker, which produces the error
// messages, agrees with robfig's parser, which produces the schedule, on the
// meaning of every accepted field.
func TestFieldBitsMatchRobfig(t *testing.T) {
	exprs := []string{
		"* * * * *", "* * ? * ?", "*/1 * * * *", "*/7 */5 */3 */2 */2", "5/15 3/4 10/5 2/3 1/2",
		"1,2,3-9/2 0-23/6 1-31/10 jan-mar,dec sun,sat", "0 0 ? * MON-FRI", "59 23 31 12 6",
		"0 0 * * sun-sat", "0-59 0-23 1-31 1-12 0-6", "30 2 15 * 1-5",
	}
	for _, expr := range exprs {
		for _, e := range []string{expr, "0 " + expr} {
			if len(strings.Fields(e)) > 6 {
				continue
			}
			ours, err := Parse(e, "")
			if err != nil {
				t.Errorf("Parse(%q): %v", e, err)
				continue
			}
			theirs, err := parser.Parse(e)
			if err != nil {
				t.Errorf("robfig Parse(%q): %v", e, err)
				continue
			}
			assertSameBits(t, e, &ours.sched, theirs.(*cron.SpecSchedule))
		}
	}
}

func assertSameBits(t *testing.T, expr string, s *cron.SpecSchedule, r *cron.SpecSchedule) {
	t.Helper()
	fields := strings.Fields(expr)
	defs := fiveFields
	if len(fields) == 6 {
		defs = sixFields
	}
	robfig := map[string]uint64{
		"second": r.Second, "minute": r.Minute, "hour": r.Hour,
		"day of month": r.Dom, "month": r.Month, "day of week": r.Dow,
	}
	for i, f := range fields {
		bits, err := parseField(f, defs[i])
		if err != nil {
			t.Errorf("%q field %d: %v", expr, i+1, err)
			continue
		}
		if bits != robfig[defs[i].name] {
			t.Errorf("%q field %d (%s): ours %#x, robfig %#x", expr, i+1, defs[i].name, bits, robfig[defs[i].name])
		}
	}
	if s.Second != r.Second || s.Minute != r.Minute || s.Hour != r.Hour || s.Dom != r.Dom || s.Month != r.Month || s.Dow != r.Dow {
		t.Errorf("%q: Spec bits differ from robfig's", expr)
	}
}

func TestLocateRobfigError(t *testing.T) {
	// Fields robfig rejects by itself; the locator must find the first of them.
	fields := []string{"0", "3", "*", "13", "8"}
	if field, name := locateRobfigError(fields, fiveFields); field != 4 || name != "month" {
		t.Errorf("locateRobfigError = %d, %q, want 4, month", field, name)
	}
	if field, name := locateRobfigError([]string{"61", "0", "0", "*", "*", "*"}, sixFields); field != 1 || name != "second" {
		t.Errorf("locateRobfigError = %d, %q, want 1, second", field, name)
	}
	if field, _ := locateRobfigError([]string{"0", "3", "*", "*", "*"}, fiveFields); field != 0 {
		t.Errorf("locateRobfigError on a valid expression = %d, want 0", field)
	}
}

// TestDescriptorsMatchFields checks each calendar descriptor against the five-field
// expression it stands for, in a zone with daylight saving.
func TestDescriptorsMatchFields(t *testing.T) {
	pairs := map[string]string{
		"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
		"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
	}
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, fields := range pairs {
		a := mustParse(t, d, "America/Sao_Paulo")
		b := mustParse(t, fields, "America/Sao_Paulo")
		got, want := a.NextN(from, 30), b.NextN(from, 30)
		if len(got) != 30 || !equalTimes(got, want) {
			t.Errorf("%s != %s:\n%v\n%v", d, fields, got, want)
		}
	}
}

func TestSecondsField(t *testing.T) {
	s := mustParse(t, "*/20 30 9 * * *", "Europe/Berlin")
	from := time.Date(2025, 6, 1, 9, 29, 59, 0, s.Location())
	want := []string{"2025-06-01 09:30:00 CEST", "2025-06-01 09:30:20 CEST", "2025-06-01 09:30:40 CEST", "2025-06-02 09:30:00 CEST"}
	if got := formatTimes(s.NextN(from, 4)); !equalStrings(got, want) {
		t.Errorf("NextN = %v, want %v", got, want)
	}
	// A five-field expression fires at second 0.
	s = mustParse(t, "* * * * *", "")
	from = time.Date(2025, 6, 1, 9, 29, 0, 1, time.UTC)
	if got := s.Next(from); !got.Equal(time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("Next = %v", got)
	}
}

func mustParse(t testing.TB, expr, tz string) *Spec {
	t.Helper()
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "|") == strings.Join(b, "|")
}

func formatTimes(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format("2006-01-02 15:04:05 MST")
	}
	return out
}
