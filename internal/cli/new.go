package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/registry"
)

const goTemplate = `// Command %[1]s is an aerofn function.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o %[1]s.wasm .
// Deploy: aerofn deploy %[1]s %[1]s.wasm --config-file config.json
package main

import (
	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		aerofn.Info("called by " + ev.UserID)
		return map[string]string{"message": "hello from %[1]s"}, nil
	})
}

func main() {}
`

func newNew(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "new NAME",
		Short: "Create a Go function skeleton in ./NAME",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := registry.ValidateName(name); err != nil {
				return err
			}
			if err := os.Mkdir(name, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(name, "main.go"), []byte(fmt.Sprintf(goTemplate, name)), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(name, "config.json"), []byte("{\n  \"timeout\": 10,\n  \"verify_jwt\": true\n}\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created %s/main.go and %s/config.json\n", name, name)
			return nil
		},
	}
}
