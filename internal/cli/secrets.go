package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joho/godotenv"
	"github.com/spf13/cobra"
)

// readAssignments gathers NAME=VALUE arguments and, with file, the
// assignments of a dotenv file (KEY=value lines, # comments, quotes,
// "export " prefixes, as github.com/joho/godotenv reads them).
func readAssignments(args []string, file string) (map[string]string, error) {
	values := map[string]string{}
	if file != "" {
		m, err := godotenv.Read(file)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %v (it holds NAME=value lines)", file, err)
		}
		for k, v := range m {
			values[k] = v
		}
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not NAME=VALUE", a)
		}
		values[k] = v
	}
	if len(values) == 0 {
		return nil, errors.New("nothing to set: give NAME=VALUE pairs or --from-env-file FILE")
	}
	return values, nil
}

// nameList is a list answer: an array of {"name", "updated_at", "value"?},
// bare or under key.
func nameList(b []byte, key string) ([]map[string]any, error) {
	var l []map[string]any
	if err := json.Unmarshal(b, &l); err == nil {
		return l, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(m[key], &l); err != nil {
		return nil, err
	}
	return l, nil
}

// valueStore is the commands of one name → value store: secrets or env.
type valueStore struct {
	use, what, path, key string
	showValues           bool
	setShort, example    string
}

func newValueStore(stdout io.Writer, vs valueStore) *cobra.Command {
	cmd := &cobra.Command{Use: vs.use, Short: vs.what, Example: vs.example}
	var fromFile string
	var fset, frm clientFlags
	set := &cobra.Command{
		Use:     "set NAME=VALUE... | --from-env-file FILE",
		Short:   vs.setShort,
		Example: fmt.Sprintf("  aerofn %[1]s set API_KEY=abcd1234\n  aerofn %[1]s set --from-env-file .env", vs.use),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := readAssignments(args, fromFile)
			if err != nil {
				return err
			}
			c, err := fset.client()
			if err != nil {
				return err
			}
			if _, err := c.json("POST", vs.path, values); err != nil {
				return err
			}
			names := make([]string, 0, len(values))
			for k := range values {
				names = append(names, k)
			}
			slices.Sort(names)
			fmt.Fprintf(stdout, "set %s: %s (a function reads one with env() when its config's env lists it)\n", vs.use, strings.Join(names, ", "))
			return nil
		},
	}
	set.Flags().StringVar(&fromFile, "from-env-file", "", "read NAME=value lines from a dotenv file")
	list := getCommand(stdout, &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List " + vs.use,
		Example: fmt.Sprintf("  aerofn %[1]s ls\n  aerofn %[1]s ls -o json", vs.use),
		Args:    cobra.NoArgs,
	}, func([]string) string { return vs.path }, func(t *tabwriter.Writer, _ []string, b json.RawMessage) error {
		l, err := nameList(b, vs.key)
		if err != nil {
			return err
		}
		if vs.showValues {
			row(t, "NAME", "VALUE", "UPDATED")
		} else {
			row(t, "NAME", "UPDATED")
		}
		for _, e := range l {
			var upd any = e["updated_at"]
			if s, ok := upd.(string); ok {
				if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
					upd = tm
				}
			}
			if vs.showValues {
				row(t, e["name"], e["value"], upd)
			} else {
				row(t, e["name"], upd)
			}
		}
		return nil
	})
	rm := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"unset"},
		Short:   "Delete " + vs.use,
		Example: fmt.Sprintf("  aerofn %s rm API_KEY", vs.use),
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := frm.client()
			if err != nil {
				return err
			}
			for _, n := range args {
				if _, err := c.json("DELETE", vs.path+"/"+url.PathEscape(n), nil); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "deleted %s\n", n)
			}
			return nil
		},
	}
	fset.bind(set)
	frm.bind(rm)
	cmd.AddCommand(set, list, rm)
	return cmd
}

func newSecrets(stdout io.Writer) *cobra.Command {
	return newValueStore(stdout, valueStore{use: "secrets", path: "/admin/v1/secrets", key: "secrets",
		what:     "Manage secrets: encrypted values functions read with env(); never shown again",
		setShort: "Store secrets (encrypted; values are never shown again)",
		example:  "  aerofn secrets set STRIPE_KEY=sk_test_123\n  aerofn secrets ls\n  aerofn secrets rm STRIPE_KEY"})
}

func newEnv(stdout io.Writer) *cobra.Command {
	return newValueStore(stdout, valueStore{use: "env", path: "/admin/v1/env", key: "env", showValues: true,
		what:     "Manage plain configuration values functions read with env() (shown, any length, empty allowed)",
		setShort: "Store plain values (shown by env ls; use secrets for anything sensitive)",
		example:  "  aerofn env set DEBUG=1 GREETING=Hello\n  aerofn env ls\n  aerofn env rm DEBUG"})
}
