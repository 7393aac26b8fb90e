package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/registry"
)

func fnPath(name string, sub ...string) string {
	p := "/admin/v1/functions/" + url.PathEscape(name)
	for _, s := range sub {
		p += "/" + s
	}
	return p
}

// describedFunction is GET /admin/v1/functions/{name}.
type describedFunction struct {
	registry.Function
	NextRuns []nextRuns `json:"next_runs"`
}

// nextRuns are one schedule's next run times.
type nextRuns struct {
	TriggerIndex int         `json:"trigger_index"`
	Cron         string      `json:"cron"`
	Times        []time.Time `json:"times"`
}

// firstNextRun is the soonest next run of any schedule.
func (d describedFunction) firstNextRun() (time.Time, bool) {
	var first time.Time
	for _, n := range d.NextRuns {
		if len(n.Times) > 0 && (first.IsZero() || n.Times[0].Before(first)) {
			first = n.Times[0]
		}
	}
	return first, !first.IsZero()
}

// triggerSummary is one line per trigger, HTTP first.
func triggerSummary(cfg registry.Config) []string {
	out := []string{"http"}
	for _, t := range cfg.Triggers {
		switch {
		case t.Database != nil:
			s := "database " + t.Database.Table
			if len(t.Database.Events) > 0 {
				s += " " + strings.Join(t.Database.Events, ",")
			}
			out = append(out, s)
		case t.Schedule != nil:
			s := "schedule " + t.Schedule.Cron
			if t.Schedule.Timezone != "" {
				s += " (" + t.Schedule.Timezone + ")"
			}
			out = append(out, s)
		case t.Webhook != nil:
			out = append(out, "webhook (secret "+t.Webhook.Secret+")")
		default:
			out = append(out, t.Type)
		}
	}
	return out
}

func newList(stdout io.Writer) *cobra.Command {
	return getCommand(stdout, &cobra.Command{
		Use:     "ls",
		Short:   "List functions",
		Example: "  aerofn ls\n  aerofn ls -o json | jq '.[].name'",
		Args:    cobra.NoArgs,
	}, func([]string) string { return "/admin/v1/functions" }, func(t *tabwriter.Writer, _ []string, fns []registry.Function) error {
		row(t, "NAME", "VERSION", "ENABLED", "TRIGGERS", "UPDATED")
		for _, fn := range fns {
			row(t, fn.Name, fn.Version, fn.Enabled, strings.Join(triggerSummary(fn.Config), "; "), fn.UpdatedAt)
		}
		if len(fns) == 0 {
			fmt.Fprintln(t, "(no functions yet: aerofn new NAME, then aerofn deploy)")
		}
		return nil
	})
}

func newInspect(stdout io.Writer) *cobra.Command {
	return getCommand(stdout, &cobra.Command{
		Use:     "inspect NAME",
		Short:   "Show a function: version, module hash, config, triggers, next scheduled runs",
		Example: "  aerofn inspect hello\n  aerofn inspect hello -o json | jq .config",
		Args:    exactArgs(1, "give the function's name"),
	}, func(args []string) string { return fnPath(args[0]) }, func(t *tabwriter.Writer, _ []string, fn describedFunction) error {
		cfg, _ := json.Marshal(fn.Config)
		row(t, "name", fn.Name)
		row(t, "description", fn.Description)
		row(t, "enabled", fn.Enabled)
		row(t, "version", fn.Version)
		row(t, "wasm_hash", fn.WasmHash)
		row(t, "created", fn.CreatedAt)
		row(t, "updated", fn.UpdatedAt)
		for i, tr := range triggerSummary(fn.Config) {
			row(t, map[bool]string{true: "triggers", false: ""}[i == 0], tr)
		}
		for _, nr := range fn.NextRuns {
			for i, tm := range nr.Times {
				row(t, map[bool]string{true: "next_runs (" + nr.Cron + ")", false: ""}[i == 0], tm)
			}
		}
		row(t, "config", string(cfg))
		return nil
	})
}

func newEnable(stdout io.Writer, enable bool) *cobra.Command {
	var f clientFlags
	use, short := "enable", "Enable a function: HTTP calls and its triggers run again"
	if !enable {
		use, short = "disable", "Disable a function: calls get 404 and its triggers stop, nothing is deleted"
	}
	cmd := &cobra.Command{
		Use:     use + " NAME",
		Short:   short,
		Example: "  aerofn " + use + " hello",
		Args:    exactArgs(1, "give the function's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if _, err := c.json("PATCH", fnPath(args[0]), map[string]any{"enabled": enable}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%sd %s\n", use, args[0])
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newRemove(stdin io.Reader, stdout io.Writer) *cobra.Command {
	var f clientFlags
	var yes bool
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Short:   "Delete a function, all its versions and triggers (asks first unless --yes)",
		Example: "  aerofn rm hello\n  aerofn rm hello --yes   # in scripts",
		Args:    exactArgs(1, "give the function's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if !yes {
				fmt.Fprintf(stdout, "Delete function %s with all its versions and triggers? This cannot be undone. [y/N] ", args[0])
				line, err := bufio.NewReader(stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					if errors.Is(err, io.EOF) && line == "" {
						return errors.New("not deleted: no answer on stdin; pass --yes to delete without asking")
					}
					return errors.New("not deleted")
				}
			}
			if _, err := c.json("DELETE", fnPath(args[0]), nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", args[0])
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	return cmd
}

func newRollback(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "rollback NAME [VERSION|SHA256]",
		Short: "Make an earlier version current again (default: the one before the current)",
		Example: `  aerofn rollback hello        # back to the version before the current one
  aerofn rollback hello 3
  aerofn rollback hello 9f86d081884c7d65...`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			body := map[string]any{}
			switch {
			case len(args) == 2:
				if n, err := strconv.Atoi(args[1]); err == nil {
					body["version"] = n
				} else {
					body["wasm_hash"] = args[1]
				}
			default:
				var vs []registry.Version
				if err := c.getJSON(fnPath(args[0], "versions"), &vs); err != nil {
					return err
				}
				sort.Slice(vs, func(i, j int) bool { return vs[i].Version > vs[j].Version })
				cur := -1
				for i, v := range vs {
					if v.Current {
						cur = i
					}
				}
				if cur < 0 || cur+1 >= len(vs) {
					return fmt.Errorf("%s has no version before its current one; aerofn versions %s lists them", args[0], args[0])
				}
				body["version"] = vs[cur+1].Version
			}
			b, err := c.json("POST", fnPath(args[0], "rollback"), body)
			if err != nil {
				return err
			}
			return emitAs(&o, stdout, b, func(t *tabwriter.Writer, fn registry.Function) error {
				fmt.Fprintf(t, "%s is at version %d (sha256 %s)\n", fn.Name, fn.Version, short(fn.WasmHash))
				return nil
			})
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	return cmd
}

func newVersions(stdout io.Writer) *cobra.Command {
	return getCommand(stdout, &cobra.Command{
		Use:     "versions NAME",
		Short:   "List a function's versions, newest first",
		Example: "  aerofn versions hello",
		Args:    exactArgs(1, "give the function's name"),
	}, func(args []string) string { return fnPath(args[0], "versions") }, func(t *tabwriter.Writer, _ []string, vs []registry.Version) error {
		row(t, "VERSION", "CURRENT", "SHA256", "SIZE", "CREATED", "DESCRIPTION")
		for _, v := range vs {
			cur := ""
			if v.Current {
				cur = "*"
			}
			row(t, v.Version, cur, short(v.WasmHash), v.Size, v.CreatedAt, v.Description)
		}
		return nil
	})
}
