package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"

	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/jsbundle"
	"github.com/aerodb/aerofn/internal/registry"
)

// deployModule returns the bytes a deploy stores: the wasm part as it is,
// or the script parts (a JavaScript or TypeScript function) bundled by
// jsbundle and marked as a script (engine.ScriptModule).
//
// A script deploy has one or more file parts named script, each with its
// path relative to the function as filename (lib/db.ts), or one script
// field holding the code of a single file. The entry is the entry field,
// else the only source file, else index.ts or index.js. The size limit
// applies to the files as uploaded, and to the bundle.
func (a *API) deployModule(r *http.Request) ([]byte, error) {
	form := r.MultipartForm
	if len(form.File["script"]) == 0 && len(form.Value["script"]) == 0 {
		return formFile(r, "wasm")
	}
	if len(form.File["wasm"]) > 0 || len(form.Value["wasm"]) > 0 {
		return nil, badRequest("invalid_form", "give either a wasm part or script parts, not both")
	}
	files := map[string]string{}
	var names []string
	total := 0
	add := func(name string, b []byte) error {
		total += len(b)
		if total > registry.MaxModuleSize {
			return apiError(http.StatusRequestEntityTooLarge, "module_too_large", "the script files are over %d bytes", registry.MaxModuleSize)
		}
		if _, dup := files[name]; dup {
			return badRequest("invalid_script", "file %q is given twice", name)
		}
		files[name] = string(b)
		names = append(names, name)
		return nil
	}
	for _, v := range form.Value["script"] {
		if err := add("function.ts", []byte(v)); err != nil {
			return nil, err
		}
	}
	for _, fh := range form.File["script"] {
		name, err := scriptName(fh)
		if err != nil {
			return nil, badRequest("invalid_script", "%v", err)
		}
		b, err := readPart(fh)
		if err != nil {
			return nil, err
		}
		if err := add(name, b); err != nil {
			return nil, err
		}
	}
	entry := r.FormValue("entry")
	if entry != "" {
		e, err := jsbundle.CleanName(entry)
		if err != nil {
			return nil, badRequest("invalid_script", "entry: %v", err)
		}
		entry = e
		if _, ok := files[entry]; !ok {
			return nil, badRequest("invalid_script", "entry %q is not among the uploaded files", entry)
		}
	} else {
		e, err := jsbundle.Entry(names)
		if err != nil {
			return nil, badRequest("invalid_script", "%v", err)
		}
		entry = e
	}
	bundle, err := jsbundle.Bundle(files, entry)
	var be *jsbundle.Error
	if errors.As(err, &be) {
		return nil, badRequest("invalid_script", "%s", be.Error())
	}
	if err != nil {
		return nil, badRequest("invalid_script", "%v", err)
	}
	out := engine.ScriptModule(bundle)
	if len(out) > registry.MaxModuleSize {
		return nil, apiError(http.StatusRequestEntityTooLarge, "module_too_large", "the bundled script is %d bytes; the limit is %d", len(out), registry.MaxModuleSize)
	}
	return out, nil
}

// scriptName is a script part's path. mime/multipart keeps only the last
// element of a filename, so the path is read from the part's header.
func scriptName(fh *multipart.FileHeader) (string, error) {
	name := fh.Filename
	if _, params, err := mime.ParseMediaType(fh.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		name = params["filename"]
	}
	n, err := jsbundle.CleanName(name)
	if err != nil {
		return "", err
	}
	if !jsbundle.IsSource(n) {
		return "", fmt.Errorf("file %q: a script part must be a .ts, .tsx, .js, .mjs, .cjs, .jsx or .json file", path.Base(n))
	}
	return n, nil
}

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	if fh.Size > registry.MaxModuleSize {
		return nil, apiError(http.StatusRequestEntityTooLarge, "module_too_large", "file is %d bytes; the limit is %d", fh.Size, registry.MaxModuleSize)
	}
	f, err := fh.Open()
	if err != nil {
		return nil, fmt.Errorf("opening uploaded file: %w", err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, registry.MaxModuleSize+1))
}
