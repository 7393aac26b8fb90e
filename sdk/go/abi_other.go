//go:build !wasip1

package aerofn

import (
	"encoding/json"
	"fmt"
	"os"
)

// platformHost stands in for the aerofn host outside wasip1, where there is
// none: queries and fetches fail with CodeUnavailable, log lines go to
// standard error, and no variable is whitelisted. It exists so functions and
// the SDK's pure-Go parts build, vet and test on the build machine.
type platformHost struct{}

func (platformHost) input() []byte      { return nil }
func (platformHost) setOutput(b []byte) {}

func (platformHost) log(level Level, msg string) {
	fmt.Fprintf(os.Stderr, "aerofn %s: %s\n", level, msg)
}

func (platformHost) env(key string) (string, bool) { return "", false }

func (platformHost) dbQuery(req []byte) []byte { return unavailable("db_query") }

func (platformHost) httpFetch(req []byte) []byte { return unavailable("http_fetch") }

func unavailable(call string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{
		"code":    CodeUnavailable,
		"message": call + " needs the aerofn host; this program was not built for GOOS=wasip1",
	}})
	return b
}
