package cli

import (
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

func newList(stdout io.Writer) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "ls [NAME]",
		Short: "List functions, or show one with its versions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			path := "/admin/v1/functions"
			if len(args) == 1 {
				path += "/" + url.PathEscape(args[0])
			}
			b, err := c.json("GET", path, nil)
			if err != nil {
				return err
			}
			printJSON(stdout, b)
			if len(args) == 1 {
				if b, err = c.json("GET", path+"/versions", nil); err != nil {
					return err
				}
				printJSON(stdout, b)
			}
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newRemove(stdout io.Writer) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a function and all its versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if _, err := c.json("DELETE", "/admin/v1/functions/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", args[0])
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newRollback(stdout io.Writer) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "rollback NAME VERSION|SHA256",
		Short: "Make an earlier version current again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			body := map[string]any{}
			if n, err := strconv.Atoi(args[1]); err == nil {
				body["version"] = n
			} else {
				body["wasm_hash"] = args[1]
			}
			b, err := c.json("POST", "/admin/v1/functions/"+url.PathEscape(args[0])+"/rollback", body)
			if err != nil {
				return err
			}
			printJSON(stdout, b)
			return nil
		},
	}
	f.bind(cmd)
	return cmd
}

func newLogs(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var status, since string
	var limit int
	var stats bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a function's recent invocations with their log lines (or --stats)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if since != "" {
				q.Set("since", since)
			}
			path := "/admin/v1/functions/" + url.PathEscape(args[0])
			if stats {
				path += "/stats"
			} else {
				path += "/logs"
				if status != "" {
					q.Set("status", status)
				}
				q.Set("limit", strconv.Itoa(limit))
			}
			b, err := c.json("GET", path+"?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			printJSON(stdout, b)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only success, error, timeout, memory_exceeded or interrupted")
	cmd.Flags().StringVar(&since, "since", "", "a duration (1h) or RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many invocations")
	cmd.Flags().BoolVar(&stats, "stats", false, "show counts, success rate and percentiles instead")
	return cmd
}
