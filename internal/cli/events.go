package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// delivery is one database event delivery (GET .../events).
type delivery struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	Table       string     `json:"table"`
	Operation   string     `json:"operation"`
	CapturedAt  time.Time  `json:"captured_at"`
	Attempt     int        `json:"attempt"`
	MaxAttempts int        `json:"max_attempts"`
	LastError   string     `json:"last_error"`
	FinalizedAt *time.Time `json:"finalized_at"`
}

func newEvents(stdout io.Writer) *cobra.Command {
	var state string
	var limit int
	cmd := getCommand(stdout, &cobra.Command{
		Use:   "events NAME",
		Short: "List a function's database event deliveries (dead ones with --state dead)",
		Long: `List the deliveries of a function's database events, newest first.
--state is one of held, pending, running, retrying, succeeded, dead; without it
all but held are listed. A dead delivery ran out of attempts: aerofn replay
runs it again.`,
		Example: "  aerofn events on-user-created\n  aerofn events on-user-created --state dead -o json",
		Args:    exactArgs(1, "give the function's name"),
	}, func(args []string) string {
		return fnPath(args[0], "events") + "?" + listQuery(limit, state)
	}, func(t *tabwriter.Writer, _ []string, res struct {
		Events []delivery `json:"events"`
	}) error {
		row(t, "EVENT", "STATE", "TABLE", "OPERATION", "ATTEMPT", "CAPTURED", "LAST ERROR")
		for _, d := range res.Events {
			row(t, d.ID, d.State, d.Table, d.Operation, fmt.Sprintf("%d/%d", d.Attempt, d.MaxAttempts), d.CapturedAt, clip(d.LastError, 60))
		}
		return nil
	})
	cmd.Flags().StringVar(&state, "state", "", "held, pending, running, retrying, succeeded or dead")
	cmd.Flags().IntVar(&limit, "limit", 100, "how many (1-1000)")
	return cmd
}

func newReplay(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:     "replay NAME EVENT_ID",
		Short:   "Deliver a database event to the function again (a dead or finished delivery)",
		Example: "  aerofn events on-user-created --state dead\n  aerofn replay on-user-created 42",
		Args:    exactArgs(2, "give the function's name and the event id (aerofn events NAME lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			b, err := c.json("POST", fnPath(args[0], "events", url.PathEscape(args[1]), "replay"), nil)
			if err != nil {
				return err
			}
			return emitAs(&o, stdout, b, func(t *tabwriter.Writer, d delivery) error {
				fmt.Fprintf(t, "event %s of %s is %s again; aerofn events %s shows how it goes\n", d.ID, args[0], d.State, args[0])
				return nil
			})
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	return cmd
}

// run is one schedule run (GET .../runs).
type run struct {
	TriggerIndex  int        `json:"trigger_index"`
	ScheduledTime time.Time  `json:"scheduled_time"`
	Kind          string     `json:"kind"`
	State         string     `json:"state"`
	Cron          string     `json:"cron"`
	Status        string     `json:"status"`
	Error         string     `json:"error"`
	Note          string     `json:"note"`
	StartedAt     *time.Time `json:"started_at"`
	LateMS        *float64   `json:"late_ms"`
}

func newRuns(stdout io.Writer) *cobra.Command {
	var state string
	var limit int
	cmd := getCommand(stdout, &cobra.Command{
		Use:     "runs NAME",
		Short:   "List a scheduled function's runs (newest first) and its next run times",
		Example: "  aerofn runs nightly\n  aerofn runs nightly --state failed -o json",
		Args:    exactArgs(1, "give the function's name"),
	}, func(args []string) string {
		return fnPath(args[0], "runs") + "?" + listQuery(limit, state)
	}, func(t *tabwriter.Writer, args []string, res struct {
		Schedules []struct {
			TriggerIndex int         `json:"trigger_index"`
			Cron         string      `json:"cron"`
			NextRuns     []time.Time `json:"next_runs"`
		} `json:"schedules"`
		Runs []run `json:"runs"`
	}) error {
		for _, s := range res.Schedules {
			next := "-"
			if len(s.NextRuns) > 0 {
				next = cell(s.NextRuns[0])
			}
			fmt.Fprintf(t, "schedule %d: %s, next run %s\n", s.TriggerIndex, s.Cron, next)
		}
		if len(res.Schedules) == 0 {
			fmt.Fprintf(t, "(%s has no schedule: aerofn config set %s 'triggers=[{\"type\":\"schedule\",\"cron\":\"*/5 * * * *\"}]' adds one)\n", args[0], args[0])
		}
		row(t, "SCHEDULED", "KIND", "STATE", "STATUS", "LATE", "NOTE")
		for _, r := range res.Runs {
			late := "-"
			if r.LateMS != nil {
				late = fmt.Sprintf("%.0fms", *r.LateMS)
			}
			note := r.Note
			if r.Error != "" {
				note = r.Error
			}
			row(t, r.ScheduledTime, r.Kind, r.State, r.Status, late, clip(note, 60))
		}
		return nil
	})
	cmd.Flags().StringVar(&state, "state", "", "only runs in this state (e.g. succeeded, failed, skipped)")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs (1-1000)")
	return cmd
}

func newRun(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	var index int
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a scheduled function now, as its schedule would (recorded as a manual run)",
		Example: `  aerofn run nightly
  aerofn run nightly --trigger-index 1 -o json`,
		Args: exactArgs(1, "give the function's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var body any
			if cmd.Flags().Changed("trigger-index") {
				body = map[string]int{"trigger_index": index}
			}
			b, err := c.json("POST", fnPath(args[0], "run"), body)
			if err != nil {
				return err
			}
			var res struct {
				Status     string          `json:"status"`
				Invocation string          `json:"invocation_id"`
				DurationMS float64         `json:"duration_ms"`
				Result     json.RawMessage `json:"result"`
				Error      string          `json:"error"`
			}
			if err := json.Unmarshal(b, &res); err != nil {
				return err
			}
			err = o.emit(stdout, b, func(t *tabwriter.Writer) error {
				fmt.Fprintf(t, "ran %s: %s in %.1fms (invocation %s)\n", args[0], res.Status, res.DurationMS, res.Invocation)
				if len(res.Result) > 0 {
					fmt.Fprintf(t, "result: %s\n", res.Result)
				}
				if res.Error != "" {
					fmt.Fprintf(t, "error: %s\n", res.Error)
				}
				return nil
			})
			if err == nil && res.Status != "success" {
				return &exitError{code: 2, err: fmt.Errorf("the run ended %s (aerofn logs %s shows its log lines)", res.Status, args[0])}
			}
			return err
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	cmd.Flags().IntVar(&index, "trigger-index", 0, "which schedule (config.triggers index; default the first)")
	return cmd
}
