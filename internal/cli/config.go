package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newConfig(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change a function's config (changes merge with the rest)",
		Long: `Read and change a deployed function's config: timeout, max_memory, env,
verify_jwt, run_as, methods, allowed_hosts, triggers, cors.

A change names the fields it changes and keeps the others
(PATCH /admin/v1/functions/NAME with {"config": {...}}). A field named is
replaced as a whole: "triggers" replaces every trigger.`,
	}
	cmd.AddCommand(newConfigGet(stdout), newConfigSet(stdout), newConfigEdit(stdin, stdout, stderr))
	return cmd
}

func newConfigGet(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:     "get NAME [FIELD]",
		Short:   "Print a function's config, or one field of it",
		Example: "  aerofn config get hello\n  aerofn config get hello triggers -o json",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, fn, err := getConfig(&f, args[0])
			if err != nil {
				return err
			}
			var b []byte
			if len(args) == 2 {
				v, ok := fn.Config[args[1]]
				if !ok {
					return fmt.Errorf("%s's config has no %s set (fields set: %s)", args[0], args[1], strings.Join(slices.Sorted(maps.Keys(fn.Config)), ", "))
				}
				b = v
			} else {
				b, _ = json.Marshal(fn.Config)
			}
			return o.emit(stdout, b, func(t *tabwriter.Writer) error {
				if len(args) == 2 {
					printJSON(t, b)
					return nil
				}
				for _, k := range slices.Sorted(maps.Keys(fn.Config)) {
					row(t, k, string(fn.Config[k]))
				}
				return nil
			})
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	return cmd
}

// parseAssignments reads FIELD=VALUE pairs (VALUE is JSON when it parses,
// else a string) or one JSON object.
func parseAssignments(args []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if len(args) == 1 && strings.HasPrefix(strings.TrimSpace(args[0]), "{") {
		if err := json.Unmarshal([]byte(args[0]), &out); err != nil {
			return nil, fmt.Errorf("the config change is not a JSON object: %v", err)
		}
		return out, nil
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not FIELD=VALUE (e.g. timeout=20 or 'triggers=[{\"type\":\"schedule\",\"cron\":\"@hourly\"}]')", a)
		}
		if json.Valid([]byte(v)) {
			out[k] = json.RawMessage(v)
		} else {
			s, _ := json.Marshal(v)
			out[k] = s
		}
	}
	return out, nil
}

func newConfigSet(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	var file string
	cmd := &cobra.Command{
		Use:   "set NAME FIELD=VALUE... | NAME '{JSON}' | NAME --file FILE",
		Short: "Change fields of a function's config, keeping the others",
		Long: `Change fields of a function's config and keep the others. VALUE is JSON
when it parses as JSON (20, true, ["A","B"], {...}) and a string otherwise.
A field given is replaced as a whole: triggers=[...] sets every trigger.`,
		Example: `  aerofn config set hello timeout=20
  aerofn config set hello 'env=["GREETING"]' verify_jwt=false
  aerofn config set hello 'triggers=[{"type":"schedule","cron":"*/5 * * * *"}]'
  aerofn config set hello '{"timeout": 20, "methods": ["GET", "POST"]}'
  aerofn config set hello --file config.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var change map[string]json.RawMessage
			var err error
			switch {
			case file != "" && len(args) > 1:
				return errors.New("give --file or FIELD=VALUE pairs, not both")
			case file != "":
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &change); err != nil {
					return fmt.Errorf("%s is not a JSON object: %v", file, err)
				}
			case len(args) == 1:
				return fmt.Errorf("say what to change: aerofn config set %s FIELD=VALUE (see --help)", args[0])
			default:
				if change, err = parseAssignments(args[1:]); err != nil {
					return err
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			return patchConfig(c, &o, stdout, args[0], change)
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	cmd.Flags().StringVar(&file, "file", "", "a JSON file with the fields to change")
	return cmd
}

// getConfig makes the client f says and gets a function's config with it,
// field by field.
func getConfig(f *clientFlags, name string) (c *client, fn struct {
	Config map[string]json.RawMessage `json:"config"`
}, err error) {
	if c, err = f.client(); err != nil {
		return nil, fn, err
	}
	err = c.getJSON(fnPath(name), &fn)
	return c, fn, err
}

// patchConfig sends a config change and prints the config that results.
func patchConfig(c *client, o *outputFlag, stdout io.Writer, name string, change map[string]json.RawMessage) error {
	b, err := c.json("PATCH", fnPath(name), map[string]any{"config": change})
	if err != nil {
		return err
	}
	var fn describedFunction
	if err := json.Unmarshal(b, &fn); err != nil {
		return err
	}
	return o.emit(stdout, b, func(t *tabwriter.Writer) error {
		cfg, _ := json.Marshal(fn.Config)
		fmt.Fprintf(t, "%s config: %s\n", fn.Name, cfg)
		for _, tr := range triggerSummary(fn.Config) {
			fmt.Fprintf(t, "  trigger: %s\n", tr)
		}
		if next, ok := fn.firstNextRun(); ok {
			fmt.Fprintf(t, "  next run: %s\n", cell(next))
		}
		return nil
	})
}

func newConfigEdit(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit a function's config in $VISUAL or $EDITOR (default vi); saves what changed",
		Long: `Open the function's config as JSON in $VISUAL or $EDITOR (default vi). On
exit, the fields that changed are saved; a field deleted from the document is
reset to its default (sent as null). Nothing is sent when nothing changed.`,
		Example: "  aerofn config edit hello\n  EDITOR=nano aerofn config edit hello",
		Args:    exactArgs(1, "give the function's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, fn, err := getConfig(&f, args[0])
			if err != nil {
				return err
			}
			before, _ := json.MarshalIndent(fn.Config, "", "  ")
			dir, err := os.MkdirTemp("", "aerofn-config-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			path := filepath.Join(dir, args[0]+".json")
			if err := os.WriteFile(path, append(before, '\n'), 0o600); err != nil {
				return err
			}
			editor := firstOf(getenv("VISUAL"), getenv("EDITOR"), "vi")
			ed := exec.Command("sh", "-c", editor+` "$1"`, "editor", path)
			ed.Stdin, ed.Stdout, ed.Stderr = stdin, stdout, stderr
			if err := ed.Run(); err != nil {
				return fmt.Errorf("the editor (%s) failed: %v; nothing was saved", editor, err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var edited map[string]json.RawMessage
			if err := json.Unmarshal(after, &edited); err != nil {
				return fmt.Errorf("the edited config is not a JSON object (%v); nothing was saved, run aerofn config edit %s again", err, args[0])
			}
			change := map[string]json.RawMessage{}
			for k, v := range edited {
				if old, ok := fn.Config[k]; !ok || !jsonEqual(old, v) {
					change[k] = v
				}
			}
			for k := range fn.Config {
				if _, ok := edited[k]; !ok {
					change[k] = json.RawMessage("null")
				}
			}
			if len(change) == 0 {
				fmt.Fprintln(stdout, "no change")
				return nil
			}
			return patchConfig(c, &o, stdout, args[0], change)
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	return cmd
}

func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}
