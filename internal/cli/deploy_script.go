package cli

import (
	"fmt"
	"io/fs"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"

	"github.com/aerodb/aerofn/internal/jsbundle"
)

// isScript reports whether a deploy's source is a JavaScript or TypeScript
// function: a .ts/.js (etc.) file, or a directory without go.mod that holds
// an index or main .ts/.js file.
func isScript(path string) bool {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		if fileExists(filepath.Join(path, "go.mod")) {
			return false
		}
		for _, n := range []string{"index.ts", "index.js", "main.ts", "main.js", "index.mjs", "main.mjs"} {
			if fileExists(filepath.Join(path, n)) {
				return true
			}
		}
		return false
	}
	return jsbundle.IsSource(path) && filepath.Ext(path) != ".json"
}

// scriptFunctionName is a script deploy's default name: the file's name
// without its extension, or the directory's name.
func scriptFunctionName(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	base := filepath.Base(abs)
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		base = strings.TrimSuffix(base, filepath.Ext(base))
	}
	return base
}

// scriptFiles reads a script deploy's files: the one file, or every source
// file under the directory (relative paths; node_modules, hidden entries
// and .d.ts files left out).
func scriptFiles(path string) (map[string]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	if !fi.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(path)] = string(b)
		return files, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != path && (strings.HasPrefix(name, ".") || name == "node_modules") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !jsbundle.IsSource(name) || strings.HasSuffix(name, ".d.ts") {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no .ts or .js files", path)
	}
	return files, nil
}

// writeScriptParts bundles the function locally first, so that a syntax
// error or a missing import is reported before anything is uploaded, then
// adds one script part per file (the server bundles them again).
func writeScriptParts(mw *multipart.Writer, path string) error {
	files, err := scriptFiles(path)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	entry, err := jsbundle.Entry(names)
	if err != nil {
		return err
	}
	if _, err := jsbundle.Bundle(files, entry); err != nil {
		return fmt.Errorf("bundling %s: %w", path, err)
	}
	_ = mw.WriteField("entry", entry)
	for _, n := range names {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="script"; filename=%q`, n))
		h.Set("Content-Type", "text/plain; charset=utf-8")
		part, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := part.Write([]byte(files[n])); err != nil {
			return err
		}
	}
	return nil
}
