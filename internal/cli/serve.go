package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/server"
)

func newServe(stdout, stderr io.Writer) *cobra.Command {
	var cfg config.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an aerofn node (migrates the database first)",
		Long: `Run an aerofn node: migrate the database, then serve the API and run the
triggers. Settings come from flags or AEROFN_* variables (aerofn serve --help
lists them); the database, the JWT secret and the secrets key are required.`,
		Example: `  AEROFN_DATABASE_URL=postgres://postgres@127.0.0.1:5432/app \
  AEROFN_JWT_SECRET=$(openssl rand -hex 32) AEROFN_SECRETS_KEY=$(openssl rand -hex 32) \
  aerofn serve --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Resolve(cmd.Flags(), getenv); err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, stdout, stderr)
		},
	}
	cfg.Bind(cmd.Flags())
	return cmd
}

func logger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve runs until the first SIGINT/SIGTERM, then stops gracefully within
// the shutdown timeout (plus server.StopGrace for interrupted calls to be
// recorded); a second signal aborts at once, until the stop is done.
func serve(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	if p, ok := serveGCPercent(getenv); ok {
		debug.SetGCPercent(p)
	}
	log := logger(stderr, cfg.LogLevel)
	srv, err := server.Open(ctx, cfg, server.Options{Stdout: stdout, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		_ = srv.Stop(context.Background())
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-sigs:
	case <-ctx.Done():
	}
	log.Info("stopping; a second signal aborts", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: aborting")
			os.Exit(1)
		case <-stopped:
		}
	}()
	if err := srv.Stop(sctx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveGCPercent is the collector's target a node runs with: 200, unless
// GOGC says otherwise (then ok is false and Go's own reading of GOGC
// stands). At 200 a node serving hello at 64 connections spent 0.85-0.95x
// the CPU per call of Go's default of 100 (five processes over three runs),
// for 40-50 MiB more RSS at 512 connections (docs/RATIONALE.md,
// "Benchmarks: the server under load").
func serveGCPercent(getenv func(string) string) (percent int, ok bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return 200, true
}
