package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func newSecrets(stdout io.Writer) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "secrets", Short: "Manage secrets that functions read with env()"}
	set := &cobra.Command{
		Use:   "set NAME=VALUE...",
		Short: "Store secrets (values are encrypted and never shown again)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			values := map[string]string{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					return fmt.Errorf("%q is not NAME=VALUE", k)
				}
				values[k] = v
			}
			if _, err := c.json("POST", "/admin/v1/secrets", values); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "set %d secret(s)\n", len(values))
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List secret names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			b, err := c.json("GET", "/admin/v1/secrets", nil)
			if err != nil {
				return err
			}
			printJSON(stdout, b)
			return nil
		},
	}
	unset := &cobra.Command{
		Use:   "unset NAME",
		Short: "Delete a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			_, err = c.json("DELETE", "/admin/v1/secrets/"+url.PathEscape(args[0]), nil)
			return err
		},
	}
	for _, sc := range []*cobra.Command{set, list, unset} {
		f.bind(sc)
		cmd.AddCommand(sc)
	}
	return cmd
}
