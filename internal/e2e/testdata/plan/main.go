// Command plan is the guest of the invoke → record fuzz target: it does what
// the X-Plan header (base64url JSON) of its call says, with whatever bytes
// the fuzzer chose: log lines through the log import and through stderr, an
// error message, a statusCode, a header and a body.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

type plan struct {
	Log    []byte `json:"log"`
	Stderr []byte `json:"stderr"`
	Fail   bool   `json:"fail"`
	Err    []byte `json:"err"`
	Status int    `json:"status"`
	Header []byte `json:"header"`
	Out    []byte `json:"out"`
}

func init() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		raw, err := base64.RawURLEncoding.DecodeString(ev.Headers.Get("x-plan"))
		if err != nil {
			return nil, fmt.Errorf("decoding x-plan: %w", err)
		}
		var p plan
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decoding x-plan: %w", err)
		}
		aerofn.Log(aerofn.LevelInfo, string(p.Log))
		if len(p.Stderr) > 0 {
			_, _ = os.Stderr.Write(p.Stderr)
		}
		if p.Fail {
			return nil, errors.New(string(p.Err))
		}
		return aerofn.Response{StatusCode: p.Status, Headers: map[string]string{"X-Fuzz": string(p.Header)}, Body: p.Out}, nil
	})
}

func main() {}
