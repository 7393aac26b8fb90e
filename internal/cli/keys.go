package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/auth"
)

func newKeys(stdout io.Writer) *cobra.Command {
	var ttl time.Duration
	var sub string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Print anon and service_role API keys signed with AEROFN_JWT_SECRET (and a user token with --sub)",
		Example: `  AEROFN_JWT_SECRET=... aerofn keys
  aerofn keys --sub 6f1c2a3e-0000-4000-8000-000000000001 --ttl 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := getenv("AEROFN_JWT_SECRET")
			if secret == "" {
				return errors.New("AEROFN_JWT_SECRET is not set: export the secret the server was started with")
			}
			anon, err := auth.Sign(secret, auth.RoleAnon, "", ttl)
			if err != nil {
				return err
			}
			svc, err := auth.Sign(secret, auth.RoleService, "", ttl)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "AEROFN_ANON_KEY=%s\nAEROFN_SERVICE_KEY=%s\n", anon, svc)
			if sub != "" {
				u, err := auth.Sign(secret, auth.RoleAuthenticated, sub, ttl)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "AEROFN_USER_KEY=%s\n", u)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "token lifetime (0: no expiry)")
	cmd.Flags().StringVar(&sub, "sub", "", "also print an authenticated token for this user id")
	return cmd
}
