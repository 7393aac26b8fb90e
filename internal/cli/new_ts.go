package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	aerofnts "github.com/aerodb/aerofn/sdk/ts"
)

const tsTemplate = `// %[1]s is an aerofn function in TypeScript (aerofn.d.ts declares the
// host API: db_query, http_fetch, env, log, console...).
//
// Deploy: aerofn deploy .
export async function handler(event: AerofnEvent): Promise<AerofnResponse> {
  log("called by " + (event.user_id ?? "anon"));
  return { statusCode: 200, body: { message: "hello from %[1]s" } };
}
`

const tsConfig = `{
  "compilerOptions": {
    "target": "ES2017",
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "strict": true,
    "noEmit": true,
    "lib": ["ES2017"]
  },
  "include": ["*.ts", "**/*.ts"]
}
`

// newTSProject is aerofn new --lang ts.
func newTSProject(stdout io.Writer, dir, name string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s already exists: pick another name, or pass --dir to create the project elsewhere", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeTSProject(dir, name); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s: index.ts, aerofn.d.ts, tsconfig.json, config.json\n", dir)
	fmt.Fprintf(stdout, "next: cd %s && aerofn deploy . --name %s\n", dir, name)
	return nil
}

// writeTSProject writes a TypeScript function skeleton into dir: the
// handler, the host API's declarations, a tsconfig.json for editors and
// tsc --noEmit, and the config.
func writeTSProject(dir, name string) error {
	files := map[string]string{
		"index.ts":      fmt.Sprintf(tsTemplate, name),
		"aerofn.d.ts":   aerofnts.DTS,
		"tsconfig.json": tsConfig,
		"config.json":   "{\n  \"timeout\": 10,\n  \"verify_jwt\": true\n}\n",
	}
	for _, n := range []string{"index.ts", "aerofn.d.ts", "tsconfig.json", "config.json"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(files[n]), 0o644); err != nil {
			return err
		}
	}
	return nil
}
