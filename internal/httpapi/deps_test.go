package httpapi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTriggersDoNotImportHTTPAPI: the trigger packages expose plain Go
// methods and collectors, and every HTTP handler lives here; none of them
// may depend on this package (directly or not), or handlers would start
// moving back.
func TestTriggersDoNotImportHTTPAPI(t *testing.T) {
	const self = "github.com/aerodb/aerofn/internal/httpapi"
	for _, pkg := range []string{"dbtrigger", "scheduler", "webhook", "invoker"} {
		path := "github.com/aerodb/aerofn/internal/" + pkg
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", path).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", path, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps %s listed %q", path, deps)
		}
		for _, d := range deps {
			if d == self {
				t.Errorf("%s imports %s", path, self)
			}
		}
	}
}
