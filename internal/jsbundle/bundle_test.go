package jsbundle

import (
	"strings"
	"testing"
)

func TestBundleTypeScriptWithLocalImport(t *testing.T) {
	out, err := Bundle(map[string]string{
		"index.ts":     "import { greet } from './lib/greet.js';\nexport async function handler(ev: {name?: string}): Promise<object> {\n  return { message: greet(ev.name ?? 'World') };\n}\n",
		"lib/greet.ts": "export const greet = (n: string): string => `Hello, ${n}!`;\n",
	}, "index.ts")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"globalThis.__aerofn_exports = ", "Hello, ", "sourceMappingURL=data:application/json;base64,"} {
		if !strings.Contains(s, want) {
			t.Fatalf("bundle lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, ": string") || strings.Contains(s, "??") {
		t.Fatalf("types or ES2020 syntax left in:\n%s", s)
	}
	// The runtime parses the bundle on every call: no CommonJS interop
	// helpers for an ES module entry.
	for _, helper := range []string{"__toCommonJS", "__copyProps"} {
		if strings.Contains(s, helper) {
			t.Fatalf("bundle declares %s:\n%s", helper, s)
		}
	}
}

func TestBundleErrorsNameFileAndLine(t *testing.T) {
	_, err := Bundle(map[string]string{"fn.ts": "export function handler() {\n  return {;\n}\n"}, "fn.ts")
	if err == nil || !strings.Contains(err.Error(), "fn.ts:2:") {
		t.Fatalf("err %v, want one naming fn.ts:2", err)
	}
	_, err = Bundle(map[string]string{"fn.js": "import x from 'lodash';\nexport default x;\n"}, "fn.js")
	if err == nil || !strings.Contains(err.Error(), "only relative imports") {
		t.Fatalf("err %v", err)
	}
	_, err = Bundle(map[string]string{"fn.js": "import x from './nope';\nexport default x;\n"}, "fn.js")
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err %v", err)
	}
}

func TestEntryAndNames(t *testing.T) {
	if e, err := Entry([]string{"a.ts", "data.json"}); err != nil || e != "a.ts" {
		t.Fatalf("%q %v", e, err)
	}
	if e, err := Entry([]string{"lib.ts", "index.ts"}); err != nil || e != "index.ts" {
		t.Fatalf("%q %v", e, err)
	}
	if _, err := Entry([]string{"a.ts", "b.ts"}); err == nil {
		t.Fatal("two candidates, no error")
	}
	for _, bad := range []string{"../x.ts", "/etc/x.ts", "a/../../x.ts", "a\x00.ts"} {
		if _, err := CleanName(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
