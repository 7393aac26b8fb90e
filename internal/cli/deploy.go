package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/propagation"
	"github.com/aerodb/aerofn/internal/registry"
)

func newDeploy(stdout, stderr io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	var name, configFile, description string
	cmd := &cobra.Command{
		Use:   "deploy DIR|FILE.wasm",
		Short: "Deploy a project (built first) or a module as a new version; shows the version and triggers",
		Long: `Deploy a new version of a function and make it current.

A .ts or .js file, or a directory without go.mod holding them (aerofn new
--lang ts makes one), is a TypeScript/JavaScript function: it is bundled here
to report errors first, then uploaded as script parts and bundled by the
server; it is named --name or after the file or directory.

DIR is a project made by aerofn new: it is built first (as aerofn build does),
named after its go.mod module, and its config.json is sent with it. FILE.wasm
is deployed as it is, named --name or after the file; --config-file sends a
config with it. Without a config the function keeps the one it has.

The older form "deploy NAME FILE.wasm" still works.`,
		Example: `  aerofn deploy .
  aerofn deploy ./hello
  aerofn deploy build/thumbnail.wasm --config-file thumbnail.json
  aerofn deploy other.wasm --name hello --description "fix greeting"`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			target := args[len(args)-1]
			if len(args) == 2 {
				name = args[0]
			}
			var wasm []byte
			st, err := os.Stat(target)
			if err != nil {
				return fmt.Errorf("%v: give a project directory (aerofn new NAME makes one) or a .wasm file", err)
			}
			script := isScript(target)
			if script {
				if name == "" {
					name = scriptFunctionName(target)
				}
				if configFile == "" && st.IsDir() {
					if p := filepath.Join(target, "config.json"); fileExists(p) {
						configFile = p
					}
				}
			} else if st.IsDir() {
				path, projName, err := buildProject(target, "", stderr)
				if err != nil {
					return err
				}
				if name == "" {
					name = projName
				}
				if configFile == "" {
					if p := filepath.Join(target, "config.json"); fileExists(p) {
						configFile = p
					}
				}
				if wasm, err = os.ReadFile(path); err != nil {
					return err
				}
			} else {
				if name == "" {
					name = strings.TrimSuffix(filepath.Base(target), ".wasm")
				}
				if wasm, err = os.ReadFile(target); err != nil {
					return err
				}
			}
			if err := registry.ValidateName(name); err != nil {
				return fmt.Errorf("%w: pass --name", err)
			}
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			_ = mw.WriteField("name", name)
			if cmd.Flags().Changed("description") {
				_ = mw.WriteField("description", description)
			}
			if configFile != "" {
				cfg, err := os.ReadFile(configFile)
				if err != nil {
					return err
				}
				_ = mw.WriteField("config", string(cfg))
			}
			if script {
				if err := writeScriptParts(mw, target); err != nil {
					return err
				}
			} else {
				part, _ := mw.CreateFormFile("wasm", name+".wasm")
				_, _ = part.Write(wasm)
			}
			if err := mw.Close(); err != nil {
				return err
			}
			b, _, err := c.do("POST", "/admin/v1/functions", mw.FormDataContentType(), &buf)
			if err != nil {
				return err
			}
			var d registry.Deployed
			if err := json.Unmarshal(b, &d); err != nil {
				return err
			}
			var prop struct {
				Propagation propagation.Result `json:"propagation"`
			}
			if err := json.Unmarshal(b, &prop); err != nil {
				return err
			}
			p := prop.Propagation
			// The triggers installed are the current config's.
			db, err := c.json("GET", fnPath(name), nil)
			if err != nil {
				return err
			}
			var fn describedFunction
			if err := json.Unmarshal(db, &fn); err != nil {
				return err
			}
			out, _ := json.Marshal(map[string]any{"id": d.ID, "name": d.Name, "version": d.Version, "wasm_hash": d.WasmHash,
				"created_at": d.CreatedAt, "enabled": fn.Enabled, "config": fn.Config, "next_runs": fn.NextRuns, "propagation": p})
			return o.emit(stdout, out, func(t *tabwriter.Writer) error {
				fmt.Fprintf(t, "deployed %s version %d (sha256 %s)\n", d.Name, d.Version, d.WasmHash)
				fmt.Fprintf(t, "  serving on %d of %d nodes\n", p.Ready, p.Nodes)
				if len(p.Pending) > 0 {
					fmt.Fprintf(t, "  not confirmed in time by: %s\n", strings.Join(p.Pending, ", "))
				}
				for _, tr := range triggerSummary(fn.Config) {
					fmt.Fprintf(t, "  trigger: %s\n", tr)
				}
				if next, ok := fn.firstNextRun(); ok {
					fmt.Fprintf(t, "  next run: %s\n", cell(next))
				}
				if !fn.Enabled {
					fmt.Fprintf(t, "  disabled: aerofn enable %s turns it on\n", d.Name)
				}
				return nil
			})
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	cmd.Flags().StringVar(&name, "name", "", "function name (default: the project's module name, or the file name)")
	cmd.Flags().StringVar(&configFile, "config-file", "", "JSON file with the function's config (default DIR/config.json)")
	cmd.Flags().StringVar(&description, "description", "", "description of the function")
	return cmd
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
