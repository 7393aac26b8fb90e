package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/auth"
)

func newInvoke(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var data, role, sub string
	cmd := &cobra.Command{
		Use:   "invoke NAME",
		Short: "Call a function over HTTP and print its response",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if role != "" {
				secret := getenv("AEROFN_JWT_SECRET")
				if secret == "" {
					return fmt.Errorf("--role needs AEROFN_JWT_SECRET to sign a token")
				}
				if c.token, err = auth.Sign(secret, auth.Role(role), sub, time.Hour); err != nil {
					return err
				}
			}
			req, err := http.NewRequest("POST", c.url+"/functions/v1/"+args[0], strings.NewReader(data))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.http.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
			if resp.StatusCode >= 300 {
				return &exitError{code: 2, err: fmt.Errorf("HTTP %d", resp.StatusCode)}
			}
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVarP(&data, "data", "d", "{}", "request body (JSON)")
	cmd.Flags().StringVar(&role, "role", "", "sign a token with this role instead (anon, authenticated, service_role)")
	cmd.Flags().StringVar(&sub, "sub", "", "user id (sub) for --role authenticated")
	return cmd
}
