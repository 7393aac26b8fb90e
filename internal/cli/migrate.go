package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/db"
	"github.com/aerodb/aerofn/internal/server"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

func newMigrate(stdout io.Writer) *cobra.Command {
	var cfg config.Config
	cmd := &cobra.Command{
		Use:     "migrate",
		Short:   "Create or update aerofn's schema and the function roles (idempotent)",
		Example: `  AEROFN_DATABASE_URL=postgres://postgres@127.0.0.1:5432/app AEROFN_SECRETS_KEY=... aerofn migrate`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Resolve(cmd.Flags(), getenv); err != nil {
				return err
			}
			if len(cfg.SecretsKey) < 32 {
				return &config.FieldError{Setting: "AEROFN_SECRETS_KEY", Message: "must be at least 32 bytes"}
			}
			ctx := cmd.Context()
			pool, err := db.Open(ctx, cfg.DatabaseURL, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := db.Migrate(ctx, pool)
			if err != nil {
				return err
			}
			if err := sqlexec.Setup(ctx, pool, server.SQLConfig(cfg)); err != nil {
				return fmt.Errorf("setting up function roles: %w", err)
			}
			if len(applied) == 0 {
				fmt.Fprintln(stdout, "schema up to date; function roles checked")
			} else {
				fmt.Fprintf(stdout, "applied migrations %v; function roles set up\n", applied)
			}
			return nil
		},
	}
	cfg.Bind(cmd.Flags())
	return cmd
}
