// Package abi holds what the host functions of the guest ABI share: the
// error reply that db_query, http_fetch and an unconfigured host function
// all return instead of trapping, so that a guest (and the SDK) decodes one
// shape whichever host function failed.
package abi

import (
	"bytes"
	"encoding/json"
)

// ErrorReply is the ABI's error reply, {"error":{"code":...,"message":...}}.
// It never fails: code and message are any strings, invalid UTF-8 included
// (replaced by U+FFFD, as encoding/json does).
func ErrorReply(code, message string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// A message quoting SQL or a URL keeps its < > & readable.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error replyError `json:"error"`
	}{replyError{code, message}})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

type replyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
