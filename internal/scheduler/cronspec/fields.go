package cronspec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// starBit mirrors robfig/cron's marker for a field written as "*" or "?" (without
// a step above 1). It decides whether the two day fields are combined with AND
// (one of them is a star) or OR (both restricted).
const starBit = 1 << 63

// fieldDef describes one position of a cron expression, with robfig's bounds.
type fieldDef struct {
	name     string
	min, max uint
	names    map[string]uint
	nameHint string // how the names are spelled, for error messages
	question bool   // "?" is allowed (the day fields, as in Quartz)
}

var (
	secondField = fieldDef{name: "second", min: 0, max: 59}
	minuteField = fieldDef{name: "minute", min: 0, max: 59}
	hourField   = fieldDef{name: "hour", min: 0, max: 23}
	domField    = fieldDef{name: "day of month", min: 1, max: 31, question: true}
	monthField  = fieldDef{name: "month", min: 1, max: 12, nameHint: "month name (jan-dec)", names: map[string]uint{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	dowField = fieldDef{name: "day of week", min: 0, max: 6, question: true, nameHint: "day name (sun-sat)", names: map[string]uint{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}}

	fiveFields = []fieldDef{minuteField, hourField, domField, monthField, dowField}
	sixFields  = []fieldDef{secondField, minuteField, hourField, domField, monthField, dowField}
)

// parseField checks one field against robfig's grammar
//
//	field = item { "," item }
//	item  = ( "*" | "?" | value [ "-" value ] ) [ "/" step ]
//
// and returns the bits robfig would compute for it. It exists so that an error can
// say exactly what is wrong in which field (robfig's messages name neither), and to
// reject the inputs robfig accepts with a meaning nobody intends.
func parseField(text string, d fieldDef) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(text, ",") {
		if item == "" {
			return 0, fmt.Errorf("empty element in list %q", text)
		}
		b, err := parseItem(item, d)
		if err != nil {
			return 0, err
		}
		bits |= b
	}
	return bits, nil
}

func parseItem(item string, d fieldDef) (uint64, error) {
	base, stepText, hasStep := strings.Cut(item, "/")
	if strings.Contains(stepText, "/") {
		return 0, fmt.Errorf("%q has more than one \"/\"", item)
	}

	var lo, hi uint
	star := false
	switch base {
	case "*":
		lo, hi, star = d.min, d.max, true
	case "?":
		if !d.question {
			return 0, fmt.Errorf("\"?\" is only allowed in day of month and day of week")
		}
		lo, hi, star = d.min, d.max, true
	case "":
		return 0, fmt.Errorf("%q has no value before \"/\"", item)
	default:
		loText, hiText, isRange := strings.Cut(base, "-")
		if strings.Contains(loText, "*") || strings.Contains(hiText, "*") {
			// robfig reads "*-5" as "*", dropping the bound without a word.
			return 0, fmt.Errorf("%q: \"*\" cannot be part of a range", item)
		}
		if strings.Contains(hiText, "-") {
			return 0, fmt.Errorf("%q has more than one \"-\"", item)
		}
		if isRange && loText == "" {
			return 0, fmt.Errorf("range %q has no start (negative numbers are not allowed)", base)
		}
		if isRange && hiText == "" {
			return 0, fmt.Errorf("range %q has no end", base)
		}
		var err error
		if lo, err = parseValue(loText, d); err != nil {
			return 0, err
		}
		hi = lo
		if isRange {
			if hi, err = parseValue(hiText, d); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards (%d is after %d)", base, lo, hi)
			}
		} else if hasStep {
			// robfig's reading of "N/step": from N to the end of the field.
			hi = d.max
		}
	}

	step := uint(1)
	if hasStep {
		// A step as large as the field's span can only ever hit the start value,
		// so "*/90" in minutes would mean minute 0, never "every 90 minutes".
		maxStep := d.max - d.min
		n, ok := parseDigits(stepText)
		if !ok {
			if stepText == "" {
				return 0, fmt.Errorf("%q has no step after \"/\"", item)
			}
			return 0, fmt.Errorf("step %q is not a number", stepText)
		}
		if n < 1 || n > uint64(maxStep) {
			return 0, fmt.Errorf("step %s out of range 1-%d", stepText, maxStep)
		}
		step = uint(n)
	}

	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << v
	}
	if star && step == 1 {
		bits |= starBit
	}
	return bits, nil
}

// parseValue reads a number or, where the field has them, a name.
func parseValue(text string, d fieldDef) (uint, error) {
	if v, ok := d.names[strings.ToLower(text)]; ok {
		return v, nil
	}
	n, ok := parseDigits(text)
	if !ok {
		if d.names != nil {
			return 0, fmt.Errorf("%q is not a number or %s", text, d.nameHint)
		}
		return 0, fmt.Errorf("%q is not a number", text)
	}
	if n < uint64(d.min) || n > uint64(d.max) {
		if d.name == dowField.name && n == 7 {
			// Vixie cron takes 7 for Sunday too; robfig does not.
			return 0, fmt.Errorf("value 7 out of range 0-6 (Sunday is 0)")
		}
		return 0, fmt.Errorf("value %s out of range %d-%d", text, d.min, d.max)
	}
	return uint(n), nil
}

// parseDigits accepts plain decimal digits only: robfig's strconv.Atoi would also
// take "+5". Values too large for uint64 saturate, which the range check rejects.
func parseDigits(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return math.MaxUint64, true
	}
	return n, true
}

// daysInMonth is the longest each month can be (February in a leap year).
var daysInMonth = [13]uint{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// neverFires reports whether no calendar day can ever match. Hours, minutes and
// seconds always have a value (empty fields are rejected), so only the days
// matter. With OR semantics (both day fields restricted) any non-empty weekday set
// matches something every week. With AND semantics a weekday set matches every
// (month, day) pair that exists, since each such date falls on every weekday in
// some year; so the schedule is dead exactly when no chosen day exists in any
// chosen month, like Feb 30 or Apr 31.
func neverFires(dom, month, dow uint64) bool {
	if dom&starBit == 0 && dow&starBit == 0 {
		return dow&0x7f == 0 && !anyDayExists(dom, month)
	}
	return !anyDayExists(dom, month) || dow&0x7f == 0
}

func anyDayExists(dom, month uint64) bool {
	for m := uint(1); m <= 12; m++ {
		if month&(1<<m) == 0 {
			continue
		}
		for d := uint(1); d <= daysInMonth[m]; d++ {
			if dom&(1<<d) != 0 {
				return true
			}
		}
	}
	return false
}
