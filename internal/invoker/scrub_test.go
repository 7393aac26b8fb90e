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

// A secret whose value starts with another secret's value is scrubbed whole,
// in plain and JSON-escaped form, whatever order the guest read them in.
func TestScrubLongestSecretFirst(t *testing.T) {
	short, long := "SECR", `SECR3T<&>"q`
	for _, order := range [][]string{{short, long}, {long, short}} {
		o := Outcome{
			Output: []byte(`{"v":"SECR3T\u003c\u0026\u003e\"q"}`),
			Error:  "e " + long,
			Logs:   []engine.LogLine{{Message: long + " and " + short}},
		}
		scrub(&o, order)
		all := string(o.Output) + "|" + o.Error + "|" + o.Logs[0].Message
		if want := `{"v":"[REDACTED]"}|e [REDACTED]|[REDACTED] and [REDACTED]`; all != want {
			t.Errorf("order %q: got %q, want %q", order, all, want)
		}
	}
}
