package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// outputFlag is --output on read commands: table on a terminal, JSON
// otherwise, unless --output or AEROFN_OUTPUT says.
type outputFlag struct{ format string }

func (o *outputFlag) bind(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "", "table or json (default: AEROFN_OUTPUT, else table on a terminal and json otherwise)")
}

// json reports whether to print JSON to w.
func (o *outputFlag) json(w io.Writer) (bool, error) {
	format := o.format
	if format == "" {
		format = getenv("AEROFN_OUTPUT")
	}
	switch format {
	case "json":
		return true, nil
	case "table":
		return false, nil
	case "":
		return !isTerminal(w), nil
	}
	return false, fmt.Errorf("--output (or AEROFN_OUTPUT) %q: use table or json", format)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// emit prints the API's JSON answer b as indented JSON, or as a table drawn
// by table.
func (o *outputFlag) emit(w io.Writer, b []byte, table func(t *tabwriter.Writer) error) error {
	asJSON, err := o.json(w)
	if err != nil {
		return err
	}
	if asJSON {
		printJSON(w, b)
		return nil
	}
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if err := table(t); err != nil {
		return err
	}
	return t.Flush()
}

func printJSON(w io.Writer, b []byte) {
	var v any
	if json.Unmarshal(b, &v) != nil {
		_, _ = w.Write(b)
		return
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(out))
}

// row writes tab-separated cells.
func row(t io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = cell(c)
	}
	fmt.Fprintln(t, strings.Join(s, "\t"))
}

func cell(c any) string {
	switch v := c.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return v
	case time.Time:
		if v.IsZero() {
			return "-"
		}
		return v.Local().Format("2006-01-02 15:04:05")
	case *time.Time:
		if v == nil {
			return "-"
		}
		return cell(*v)
	case float64:
		return fmt.Sprintf("%g", v)
	case json.RawMessage:
		if len(v) == 0 {
			return "-"
		}
		return clip(string(v), 60)
	}
	return fmt.Sprint(c)
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// getCommand makes cmd a read command: it gets the client and --output
// flags, and its run GETs path(args) and prints the answer as JSON or,
// decoded into a T, as the table that table draws.
func getCommand[T any](stdout io.Writer, cmd *cobra.Command, path func(args []string) string,
	table func(t *tabwriter.Writer, args []string, v T) error) *cobra.Command {
	var f clientFlags
	var o outputFlag
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := f.client()
		if err != nil {
			return err
		}
		return show(c, &o, stdout, path(args), func(t *tabwriter.Writer, v T) error { return table(t, args, v) })
	}
	f.bind(cmd)
	o.bind(cmd)
	return cmd
}

// show GETs path and prints the answer as emitAs does.
func show[T any](c *client, o *outputFlag, w io.Writer, path string, table func(t *tabwriter.Writer, v T) error) error {
	b, err := c.json("GET", path, nil)
	if err != nil {
		return err
	}
	return emitAs(o, w, b, table)
}

// emitAs prints the API's JSON answer b as indented JSON or, decoded into a
// T, as the table that table draws.
func emitAs[T any](o *outputFlag, w io.Writer, b []byte, table func(t *tabwriter.Writer, v T) error) error {
	return o.emit(w, b, func(t *tabwriter.Writer) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return table(t, v)
	})
}

// listQuery is the query of a list: how many, and of which state if any.
func listQuery(limit int, state string) string {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if state != "" {
		q.Set("state", state)
	}
	return q.Encode()
}
