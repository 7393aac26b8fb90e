package invoker

import (
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/engine"
)

func TestScrubRemovesPlainAndJSONEscapedSecrets(t *testing.T) {
	secret := `s3cr<et>"&\value`
	o := Outcome{
		Output: []byte(`{"plain":"` + secret + `","escaped":"s3cr\u003cet\u003e\"\u0026\\value"}`),
		Error:  "failed with " + secret,
		Logs:   []engine.LogLine{{Message: "key=" + secret}},
	}
	scrub(&o, []string{secret, "abc"})
	all := string(o.Output) + o.Error + o.Logs[0].Message
	if strings.Contains(all, "s3cr") {
		t.Fatalf("secret left in %q", all)
	}
	if strings.Count(all, redacted) != 4 {
		t.Fatalf("want 4 redactions: %q", all)
	}
	// Values too short to scrub safely are left alone (and refused at set).
	o = Outcome{Output: []byte("abc")}
	scrub(&o, []string{"abc"})
	if string(o.Output) != "abc" {
		t.Fatalf("short value scrubbed: %q", o.Output)
	}
}
