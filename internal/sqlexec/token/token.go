// Package token defines the identity token that the host signs and Postgres
// verifies: who one db_query call acts for, bound to one backend and to the
// start of one transaction. It is its own package so that both the executor
// (which signs real tokens) and the attack suite (which forges and replays
// them) use the one definition of the format.
//
// Two formats (every field free of '|'):
//
//	v1|base64(sub)|role|backend_pid|xact_start_us|expires_ms|base64(claims)|hex(hmac)
//	v2|base64(sub)|role|backend_pid|not_before_us|not_after_us|expires_ms|base64(claims)|hex(hmac)
//
// where hmac is HMAC-SHA256 with the signing key over every field before it.
// A v1 token names its transaction exactly: the host reads
// transaction_timestamp() after BEGIN and signs it. A v2 token names a short
// window that the transaction must have started in; the host signs it before
// BEGIN from its estimate of the server's clock, which saves the round trip
// that reads it. Both are bound to one backend and expire with the call.
//
// The verifying side is aerofn.verified_identity() in migration 007_rls_window.sql,
// which computes the same HMAC with the built-in sha256() and the ipad/opad
// blocks that Pads returns, so the database needs no extension for it.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Version is the first field of a token bound to one exact transaction
// start; VersionWindow that of one bound to a window.
const (
	Version       = "v1"
	VersionWindow = "v2"
)

// KeySize is the length of a signing key in bytes.
const KeySize = 32

// Identity is what a token asserts.
type Identity struct {
	Sub  string // the principal's user id; "" for anon and service_role without one
	Role string // anon, authenticated or service_role (the principal's role, not the database role)
	PID  int64  // pg_backend_pid() of the only backend the token is valid on
	Xact int64  // v1: transaction_timestamp() in microseconds since the Unix epoch
	// NotBefore and NotAfter (microseconds since the Unix epoch), when
	// NotAfter is not zero, make a v2 token: the transaction must have started
	// within [NotBefore, NotAfter]; Xact is then ignored.
	NotBefore, NotAfter int64
	Expires             time.Time // after this the token is refused even in its own transaction
	Claims              []byte    // JSON object handed to auth.jwt(); nil means {}
}

// Sign returns the token for id signed with key.
func Sign(key []byte, id Identity) string {
	claims := id.Claims
	if len(claims) == 0 {
		claims = []byte("{}")
	}
	var b strings.Builder
	b.Grow(128 + len(id.Sub)*4/3 + len(claims)*4/3)
	if id.NotAfter != 0 {
		b.WriteString(VersionWindow)
	} else {
		b.WriteString(Version)
	}
	b.WriteByte('|')
	b.WriteString(base64.StdEncoding.EncodeToString([]byte(id.Sub)))
	b.WriteByte('|')
	b.WriteString(id.Role)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(id.PID, 10))
	b.WriteByte('|')
	if id.NotAfter != 0 {
		b.WriteString(strconv.FormatInt(id.NotBefore, 10))
		b.WriteByte('|')
		b.WriteString(strconv.FormatInt(id.NotAfter, 10))
	} else {
		b.WriteString(strconv.FormatInt(id.Xact, 10))
	}
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(id.Expires.UnixMilli(), 10))
	b.WriteByte('|')
	b.WriteString(base64.StdEncoding.EncodeToString(claims))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(b.String()))
	b.WriteByte('|')
	b.WriteString(hex.EncodeToString(mac.Sum(nil)))
	return b.String()
}

// Pads returns the HMAC-SHA256 inner and outer key blocks for key (at most 64
// bytes), which the database stores beside the key so that verifying costs two
// sha256() calls and no byte loop in PL/pgSQL.
func Pads(key []byte) (ipad, opad []byte) {
	const block = 64
	ipad = make([]byte, block)
	opad = make([]byte, block)
	copy(ipad, key)
	copy(opad, key)
	for i := range block {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return ipad, opad
}

// SafeLiteral reports whether tok can be placed between single quotes in SQL
// as it is. Every token Sign makes is; the check guards the one place where a
// token is written into statement text (SET LOCAL takes no parameters).
func SafeLiteral(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '|' || c == '+' || c == '/' || c == '=' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}
