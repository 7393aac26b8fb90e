// Package jsbundle turns a JavaScript or TypeScript function (one file, or
// several with relative imports between them) into the one script aerofn's
// JavaScript runtime runs: bundled and type-stripped by esbuild, as an
// IIFE that assigns the entry's exports to the global the runtime reads, for ES2017
// (newer syntax is lowered; the QuickJS runtime is built without BigInt, so
// a BigInt literal is refused at deploy rather than at every call), with an
// inline source map so that stack traces name the user's files and lines.
//
// Nothing is read from disk: the files are given, and only relative
// imports between them resolve. Packages (bare imports such as "lodash")
// are refused; bundle them into the upload instead (aerofn deploy bundles
// a directory's local imports).
package jsbundle

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// ExportsGlobal is the global the bundle assigns its exports to
// (internal/jsruntime/guest reads it).
const ExportsGlobal = "__aerofn_exports"

// shimNamespace holds the bundle's entry point, a two-line module that
// imports the user's entry file and assigns its namespace to ExportsGlobal.
// Bundled so, the script declares only esbuild's __export helper; with
// GlobalName (the IIFE returning the exports), esbuild also emits
// __copyProps and __toCommonJS, and the runtime parses the bundle on every
// call: the helpers were most of a hello's per-call parse (docs/RATIONALE.md,
// "JavaScript and TypeScript functions").
const shimNamespace = "aerofn-entry"

// root is the virtual directory the files live in, so that the source map
// names them by their own relative paths.
const root = "/aerofn-function"

// Error is a bundling failure caused by the user's code (a syntax error, an
// unresolved import); its message lists esbuild's errors with file:line:col.
type Error struct{ Messages []string }

func (e *Error) Error() string { return strings.Join(e.Messages, "; ") }

// IsSource reports whether a file name is one Bundle accepts.
func IsSource(name string) bool {
	_, ok := loaders[path.Ext(name)]
	return ok
}

var loaders = map[string]api.Loader{
	".ts": api.LoaderTS, ".mts": api.LoaderTS, ".cts": api.LoaderTS, ".tsx": api.LoaderTSX,
	".js": api.LoaderJS, ".mjs": api.LoaderJS, ".cjs": api.LoaderJS, ".jsx": api.LoaderJSX,
	".json": api.LoaderJSON,
}

// Entry picks the entry file among names: the only source file, else
// index.ts or index.js (or main.ts/main.js) at the top level.
func Entry(names []string) (string, error) {
	var srcs []string
	for _, n := range names {
		if IsSource(n) && path.Ext(n) != ".json" {
			srcs = append(srcs, n)
		}
	}
	if len(srcs) == 1 {
		return srcs[0], nil
	}
	for _, want := range []string{"index.ts", "index.js", "main.ts", "main.js", "index.mjs", "main.mjs"} {
		for _, n := range srcs {
			if n == want {
				return n, nil
			}
		}
	}
	sort.Strings(srcs)
	return "", fmt.Errorf("cannot tell which of %d files is the entry: name it index.ts or index.js, or give the entry (files: %s)", len(srcs), strings.Join(srcs, ", "))
}

// CleanName checks an uploaded file's name: a relative path of visible
// characters without "..", as it is to be imported.
func CleanName(name string) (string, error) {
	n := path.Clean(strings.ReplaceAll(name, "\\", "/"))
	if n == "." || strings.HasPrefix(n, "/") || n == ".." || strings.HasPrefix(n, "../") || len(n) > 255 {
		return "", fmt.Errorf("file name %q must be a relative path inside the function", name)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("file name %q has a control character", name)
		}
	}
	return n, nil
}

// Bundle bundles files (relative path → contents) from entry.
func Bundle(files map[string]string, entry string) ([]byte, error) {
	if _, ok := files[entry]; !ok {
		return nil, fmt.Errorf("entry %q is not among the files", entry)
	}
	vfs := api.Plugin{Name: "aerofn", Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
			if a.Kind == api.ResolveEntryPoint {
				return api.OnResolveResult{Path: "entry", Namespace: shimNamespace}, nil
			}
			if a.Namespace == shimNamespace {
				return api.OnResolveResult{Path: path.Join(root, entry)}, nil
			}
			if !strings.HasPrefix(a.Path, "./") && !strings.HasPrefix(a.Path, "../") {
				return api.OnResolveResult{}, fmt.Errorf("cannot import %q: only relative imports of the function's own files resolve (bundle packages into the upload)", a.Path)
			}
			p := path.Join(path.Dir(a.Importer), a.Path)
			if found, ok := lookup(files, p); ok {
				return api.OnResolveResult{Path: found}, nil
			}
			return api.OnResolveResult{}, fmt.Errorf("cannot import %q: no such file among the function's files", a.Path)
		})
		b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: shimNamespace}, func(a api.OnLoadArgs) (api.OnLoadResult, error) {
			shim := "import * as exports from \"./entry\";\nglobalThis." + ExportsGlobal + " = exports;\n"
			return api.OnLoadResult{Contents: &shim, Loader: api.LoaderJS}, nil
		})
		b.OnLoad(api.OnLoadOptions{Filter: ".*"}, func(a api.OnLoadArgs) (api.OnLoadResult, error) {
			rel := strings.TrimPrefix(a.Path, root+"/")
			src, ok := files[rel]
			if !ok {
				return api.OnLoadResult{}, fmt.Errorf("no file %q", rel)
			}
			l, ok := loaders[path.Ext(rel)]
			if !ok {
				return api.OnLoadResult{}, fmt.Errorf("%q: only .ts, .tsx, .js, .mjs, .cjs, .jsx and .json files can be imported", rel)
			}
			return api.OnLoadResult{Contents: &src, Loader: l, ResolveDir: path.Dir(a.Path)}, nil
		})
	}}
	res := api.Build(api.BuildOptions{
		EntryPoints:    []string{entry},
		Bundle:         true,
		Write:          false,
		Format:         api.FormatIIFE,
		Target:         api.ES2017,
		Platform:       api.PlatformNeutral,
		Sourcemap:      api.SourceMapInline,
		SourcesContent: api.SourcesContentExclude,
		Outfile:        path.Join(root, "function.js"),
		AbsWorkingDir:  root,
		Charset:        api.CharsetUTF8,
		LogLevel:       api.LogLevelSilent,
		Plugins:        []api.Plugin{vfs},
	})
	if len(res.Errors) > 0 {
		e := &Error{}
		for _, m := range res.Errors {
			e.Messages = append(e.Messages, describe(m))
		}
		return nil, e
	}
	for _, f := range res.OutputFiles {
		if strings.HasSuffix(f.Path, ".js") {
			return f.Contents, nil
		}
	}
	return nil, errors.New("esbuild produced no script")
}

// lookup finds an import's file as TypeScript resolves it: the exact name,
// with an extension added, a .js import naming a .ts file, or an index.
func lookup(files map[string]string, p string) (string, bool) {
	rel := strings.TrimPrefix(p, root+"/")
	cands := []string{rel}
	for _, ext := range []string{".ts", ".tsx", ".js", ".mjs", ".jsx", ".json"} {
		cands = append(cands, rel+ext)
	}
	if ext := path.Ext(rel); ext == ".js" || ext == ".mjs" || ext == ".jsx" {
		base := strings.TrimSuffix(rel, ext)
		cands = append(cands, base+".ts", base+".mts", base+".tsx")
	}
	cands = append(cands, rel+"/index.ts", rel+"/index.js")
	for _, c := range cands {
		if _, ok := files[c]; ok {
			return path.Join(root, c), true
		}
	}
	return "", false
}

func describe(m api.Message) string {
	if m.Location == nil {
		return m.Text
	}
	return fmt.Sprintf("%s:%d:%d: %s", strings.TrimPrefix(m.Location.File, root+"/"), m.Location.Line, m.Location.Column+1, m.Text)
}
