package cronspec

import "fmt"

// Error is what Parse returns for every rejected schedule. The API turns it into a
// 400 whose message is Error(); callers that want the parts use errors.As.
type Error struct {
	// Expr and Timezone are the inputs of Parse, unchanged.
	Expr     string
	Timezone string
	// Field is the 1-based position of the offending field among the fields of the
	// expression (a CRON_TZ= prefix is not a field), or 0 when the problem is not
	// confined to one field (field count, unknown descriptor, timezone).
	Field int
	// FieldName names that field: "second", "minute", "hour", "day of month",
	// "month" or "day of week"; empty when Field is 0.
	FieldName string
	// Reason says what is wrong, without the expression or field.
	Reason string
	// Err is the underlying error, if any (time.LoadLocation, time.ParseDuration,
	// robfig/cron).
	Err error
}

func (e *Error) Error() string {
	if e.Field > 0 {
		return fmt.Sprintf("parsing cron %q: field %d (%s): %s", e.Expr, e.Field, e.FieldName, e.Reason)
	}
	return fmt.Sprintf("parsing cron %q: %s", e.Expr, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }
