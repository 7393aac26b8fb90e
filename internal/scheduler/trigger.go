package scheduler

import (
	"errors"
	"fmt"
	"time"

	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/scheduler/cronspec"
)

// TriggerType is the config.triggers[].type of schedules.
const TriggerType = "schedule"

// Catch-up policies: what one node does on finding ticks that were due while
// no node was up to run them.
const (
	CatchUpOnce = "once" // one run stands for all the missed ticks (default)
	CatchUpSkip = "skip" // the missed ticks are recorded as skipped
)

// Overlap policies: what a tick does when the previous run of the same
// trigger is still going.
const (
	OverlapSkip  = "skip"  // the tick is recorded as skipped_overlap (default)
	OverlapQueue = "queue" // the tick waits until the previous run ends
)

// Trigger is one schedule trigger of a function, parsed.
type Trigger struct {
	Index    int // position in config.triggers
	Cron     string
	Timezone string
	CatchUp  string
	Overlap  string
	Spec     *cronspec.Spec
}

// ParseTrigger checks a schedule trigger and fills its defaults. Every
// rejection is a *registry.ValidationError naming the field, so that deploy
// answers 400 invalid_config.
func ParseTrigger(t registry.Trigger, index int) (Trigger, error) {
	field := func(name string) string { return fmt.Sprintf("config.triggers[%d].%s", index, name) }
	invalid := func(name, format string, args ...any) error {
		return &registry.ValidationError{Field: field(name), Message: fmt.Sprintf(format, args...)}
	}
	if t.Type != TriggerType {
		return Trigger{}, invalid("type", "%q is not a schedule trigger", t.Type)
	}
	// Fields of other trigger types were refused when the config was
	// parsed (registry.ParseConfig), max_attempts among them.
	var st registry.ScheduleTrigger
	if t.Schedule != nil {
		st = *t.Schedule
	}
	out := Trigger{Index: index, Cron: st.Cron, Timezone: st.Timezone, CatchUp: st.CatchUp, Overlap: st.Overlap}
	if out.CatchUp == "" {
		out.CatchUp = CatchUpOnce
	}
	if out.Overlap == "" {
		out.Overlap = OverlapSkip
	}
	if out.Cron == "" {
		return Trigger{}, invalid("cron", "is required, e.g. \"0 3 * * *\" or \"@every 30s\"")
	}
	// A zone that does not load is the timezone field's fault, not the
	// expression's; find out with an expression that cannot be wrong.
	if st.Timezone != "" {
		if _, err := cronspec.Parse("* * * * *", st.Timezone); err != nil {
			var ce *cronspec.Error
			if errors.As(err, &ce) {
				return Trigger{}, invalid("timezone", "%s", ce.Reason)
			}
			return Trigger{}, invalid("timezone", "%v", err)
		}
	}
	spec, err := cronspec.Parse(st.Cron, st.Timezone)
	if err != nil {
		return Trigger{}, invalid("cron", "%v", err)
	}
	out.Spec = spec
	switch out.CatchUp {
	case CatchUpOnce, CatchUpSkip:
	default:
		return Trigger{}, invalid("catch_up", "%q is not one of %q, %q", st.CatchUp, CatchUpOnce, CatchUpSkip)
	}
	switch out.Overlap {
	case OverlapSkip, OverlapQueue:
	default:
		return Trigger{}, invalid("overlap", "%q is not one of %q, %q", st.Overlap, OverlapSkip, OverlapQueue)
	}
	return out, nil
}

// Triggers returns fn's schedule triggers, parsed.
func Triggers(fn registry.Function) ([]Trigger, error) {
	var out []Trigger
	for i, t := range fn.Config.Triggers {
		if t.Type != TriggerType {
			continue
		}
		st, err := ParseTrigger(t, i)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// NextRuns is what GET /admin/v1/functions/{name} shows of one schedule trigger.
type NextRuns struct {
	TriggerIndex int         `json:"trigger_index"`
	Cron         string      `json:"cron"`
	Timezone     string      `json:"timezone,omitempty"`
	Enabled      bool        `json:"enabled"`
	Times        []time.Time `json:"times"`
}

// NextRunsOf lists the next n run times after now of each schedule trigger
// of fn, in the schedule's timezone; none while fn is disabled.
func NextRunsOf(fn registry.Function, now time.Time, n int) ([]NextRuns, error) {
	ts, err := Triggers(fn)
	if err != nil {
		return nil, err
	}
	out := make([]NextRuns, 0, len(ts))
	for _, t := range ts {
		nr := NextRuns{TriggerIndex: t.Index, Cron: t.Cron, Timezone: t.Timezone, Enabled: fn.Enabled, Times: []time.Time{}}
		if fn.Enabled {
			nr.Times = t.Spec.NextN(now, n)
		}
		out = append(out, nr)
	}
	return out, nil
}
