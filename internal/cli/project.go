package cli

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/registry"
	aerofn "github.com/aerodb/aerofn/sdk/go"
)

//go:embed template
var projectTemplate embed.FS

// sdkDir is where `aerofn new` puts its copy of the SDK, inside a project.
const sdkDir = "aerofn-sdk"

// projectFiles maps a template to the file it becomes.
var projectFiles = []struct{ tmpl, file string }{
	{"go.mod.tmpl", "go.mod"},
	{"main.go.tmpl", "main.go"},
	{"main_test.go.tmpl", "main_test.go"},
	{"config.json.tmpl", "config.json"},
	{"README.md.tmpl", "README.md"},
	{"gitignore.tmpl", ".gitignore"},
}

func newNew(stdout io.Writer) *cobra.Command {
	var dir, lang string
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a Go function project that builds anywhere (go.mod, handler, test, config, README, SDK copy)",
		Long: `Create a Go function project in ./NAME (or --dir).

The project is a Go module whose go.mod points at a copy of the aerofn Go SDK
(` + sdkDir + `/, written from this binary), so it builds with nothing but the Go
toolchain: offline, anywhere, without this repository.`,
		Example: `  aerofn new hello
  cd hello && go test ./... && aerofn build && aerofn deploy .`,
		Args: exactArgs(1, "give the function's name: aerofn new NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := registry.ValidateName(name); err != nil {
				return fmt.Errorf("%w (a function name starts with a letter; use a-z, 0-9, _ and -)", err)
			}
			if dir == "" {
				dir = name
			}
			if lang == "ts" {
				return newTSProject(stdout, dir, name)
			}
			if lang != "go" {
				return fmt.Errorf("--lang must be go or ts, not %q", lang)
			}
			if err := writeProject(dir, name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "created %s: go.mod, main.go, main_test.go, config.json, README.md, %s/ (Go SDK %s)\n", dir, sdkDir, aerofn.Version)
			fmt.Fprintf(stdout, "next: cd %s && go test ./... && aerofn build && aerofn deploy .\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default ./NAME)")
	cmd.Flags().StringVar(&lang, "lang", "go", "go, or ts for a TypeScript function (index.ts, aerofn.d.ts, tsconfig.json, config.json)")
	return cmd
}

// writeProject creates dir (which must not exist yet) with the project's
// files and the SDK's source, tests left out.
func writeProject(dir, name string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s already exists: pick another name, or pass --dir to create the project elsewhere", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, sdkDir), 0o755); err != nil {
		return err
	}
	data := map[string]string{"Name": name, "SDKVersion": aerofn.Version}
	for _, f := range projectFiles {
		b, err := projectTemplate.ReadFile("template/" + f.tmpl)
		if err != nil {
			return err
		}
		t, err := template.New(f.tmpl).Parse(string(b))
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := t.Execute(&out, data); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.file), out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return fs.WalkDir(aerofn.Source, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := aerofn.Source.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, sdkDir, path), b, 0o644)
	})
}

// projectName is a project's function name: the last element of its go.mod
// module path.
func projectName(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s has no go.mod: run this in a project made by `aerofn new NAME`, or give a .wasm file", dir)
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			mod := strings.Trim(strings.TrimSpace(rest), `"`)
			return mod[strings.LastIndex(mod, "/")+1:], nil
		}
	}
	return "", fmt.Errorf("%s/go.mod has no module line", dir)
}

// buildProject compiles the Go project in dir to out (default
// dir/NAME.wasm) and returns the module's path and function name.
func buildProject(dir, out string, stderr io.Writer) (string, string, error) {
	name, err := projectName(dir)
	if err != nil {
		return "", "", err
	}
	if out == "" {
		out = filepath.Join(dir, name+".wasm")
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "", errors.New("building needs the Go toolchain (1.22 or later) on PATH: install it from https://go.dev/dl/")
	}
	c := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", abs, ".")
	c.Dir = dir
	c.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	c.Stdout, c.Stderr = stderr, stderr
	if err := c.Run(); err != nil {
		return "", "", fmt.Errorf("go build in %s failed (%v): fix the errors above, then run aerofn build again", dir, err)
	}
	return abs, name, nil
}

func newBuild(stdout, stderr io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Compile a Go function project to NAME.wasm (GOOS=wasip1 GOARCH=wasm, c-shared)",
		Long: `Compile the Go function project in DIR (default .) to DIR/NAME.wasm, NAME
being the last element of its go.mod module path. It runs

  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o NAME.wasm .

so the same build works without aerofn.`,
		Example: `  aerofn build
  aerofn build ./hello -o /tmp/hello.wasm`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			path, _, err := buildProject(dir, out, stderr)
			if err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "built %s (%d KiB)\n", relPath(path), st.Size()>>10)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "where to write the module (default DIR/NAME.wasm)")
	return cmd
}

// relPath shows path relative to the working directory when it is inside it.
func relPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
