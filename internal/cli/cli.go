// Package cli is the aerofn command line: one file per group of
// subcommands. Every command has --help with examples; an error says what to
// do next.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainWithInput(ctx, args, os.Stdin, stdout, stderr)
}

// MainWithInput is Main reading confirmations and edits from stdin.
func MainWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "aerofn:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

const rootLong = `aerofn runs WebAssembly functions next to PostgreSQL.

Write a function:   aerofn new NAME, aerofn build
Ship it:            aerofn deploy, rollback, versions, enable, disable, rm
Call and watch it:  aerofn invoke, logs [-f], runs, run, events, replay
Configure it:       aerofn config get|set|edit, secrets, env
Run the server:     aerofn serve, migrate, keys

Commands that talk to a server find it, in this order, in --url and
--service-key, in AEROFN_URL and AEROFN_SERVICE_KEY (or AEROFN_JWT_SECRET, to
sign a service token), or in the profile file (--profile, AEROFN_PROFILE,
default "default"), which is JSON at $AEROFN_CLI_CONFIG or
<user config dir>/aerofn/config.json:

  {"profiles": {"default": {"url": "http://127.0.0.1:8080",
    "service_key": "...", "anon_key": "...", "jwt_secret": "..."}}}

Read commands print a table on a terminal and JSON otherwise; --output
table|json (or AEROFN_OUTPUT) chooses. The JSON is the API's answer as it is.`

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "aerofn",
		Short:         "AeroDB Functions: WebAssembly functions next to PostgreSQL",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServe(stdout, stderr),
		newMigrate(stdout),
		newKeys(stdout),
		newNew(stdout),
		newBuild(stdout, stderr),
		newDeploy(stdout, stderr),
		newInvoke(stdout),
		newList(stdout),
		newInspect(stdout),
		newEnable(stdout, true),
		newEnable(stdout, false),
		newConfig(stdin, stdout, stderr),
		newRemove(stdin, stdout),
		newRollback(stdout),
		newVersions(stdout),
		newLogs(stdout),
		newEvents(stdout),
		newReplay(stdout),
		newRuns(stdout),
		newRun(stdout),
		newSecrets(stdout),
		newEnv(stdout),
	)
	return root
}

var getenv = os.Getenv

// exactArgs is cobra.ExactArgs with a hint of what to give.
func exactArgs(n int, hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s), got %d: %s (see %s --help)", cmd.CommandPath(), n, len(args), hint, cmd.CommandPath())
		}
		return nil
	}
}
