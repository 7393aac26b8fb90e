package aerofn

import (
	"fmt"
	"testing"
)

// fakeHost records what the SDK sends and replies with canned JSON.
type fakeHost struct {
	event      []byte
	output     []byte
	logs       []string
	vars       map[string]string
	dbReq      []byte
	dbReply    []byte
	fetchReq   []byte
	fetchReply []byte
}

func (f *fakeHost) input() []byte      { return f.event }
func (f *fakeHost) setOutput(b []byte) { f.output = b }
func (f *fakeHost) log(level Level, msg string) {
	f.logs = append(f.logs, fmt.Sprintf("%s %s", level, msg))
}

func (f *fakeHost) env(key string) (string, bool) {
	v, ok := f.vars[key]
	return v, ok
}

func (f *fakeHost) dbQuery(req []byte) []byte {
	f.dbReq = req
	return f.dbReply
}

func (f *fakeHost) httpFetch(req []byte) []byte {
	f.fetchReq = req
	return f.fetchReply
}

// useHost swaps the package's host for f until the test ends.
func useHost(t *testing.T, f *fakeHost) {
	t.Helper()
	old := host
	host = f
	t.Cleanup(func() { host = old })
}
