// Package cli is the aerofn command line: one file per subcommand.
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
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
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

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "aerofn",
		Short:         "AeroDB Functions: WebAssembly functions next to PostgreSQL",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServe(stdout, stderr),
		newMigrate(stdout),
		newKeys(stdout),
		newDeploy(stdout),
		newInvoke(stdout),
		newList(stdout),
		newRemove(stdout),
		newRollback(stdout),
		newLogs(stdout),
		newSecrets(stdout),
		newNew(stdout),
	)
	return root
}

var getenv = os.Getenv
