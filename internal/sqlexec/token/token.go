// Package token defines the identity token that the host signs and Postgres
// verifies: who one db_query call acts for, bound to one backend and to the
// start of one transaction. It is its own package so that both the executor
// (which signs real tokens) and the attack suite (which forges and replays
// them) use the one definition of the format.
//
// The format the host signs (every field free of '|'):
//
//	v2|base64(sub)|uid|role|db_role|backend_pid|not_before_us|not_after_us|expires_ms|base64(claims)|hex(hmac)
//
// where hmac is HMAC-SHA256 with the signing key over every field before it;
// uid is the sub in canonical form when it is a UUID, else empty; role is the
// principal (anon, authenticated, service_role) and db_role the database role
// the token is for. The transaction must have started within
// [not_before, not_after]: the slow path, which has read the transaction's
// start, signs exactly that instant; the fast path, which signs before
// BEGIN, a window of about a tenth of a second from its estimate of the
// server's clock. The database still accepts the format that aerofn signed
// before migration 007:
//
//	v1|base64(sub)|role|backend_pid|xact_start_us|expires_ms|base64(claims)|hex(hmac)
//
// The verifying side is aerofn.verified_identity() in migration
// 007_rls_window.sql, which computes the same HMAC with the built-in sha256()
// and the ipad/opad blocks that Pads returns, so the database needs no
// extension for it.
package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the first field of every token Sign makes; VersionLegacy that
// of the format before it, which SignLegacy makes for tests.
const (
	Version       = "v2"
	VersionLegacy = "v1"
)

// KeySize is the length of a signing key in bytes.
const KeySize = 32

// Identity is what a token asserts.
type Identity struct {
	Sub    string // the principal's user id; "" for anon and service_role without one
	Role   string // anon, authenticated or service_role (the principal's role)
	DBRole string // the database role of the connection the token is for
	PID    int64  // pg_backend_pid() of the only backend the token is valid on
	// The transaction must have started within [NotBefore, NotAfter]
	// (microseconds since the Unix epoch); equal for one exact instant.
	NotBefore, NotAfter int64
	Expires             time.Time // after this the token is refused even in its own transaction
	Claims              []byte    // JSON object handed to auth.jwt(); nil means {}
}

// UID is sub as auth.uid() returns it: lower-case when sub is a UUID in its
// canonical 8-4-4-4-12 form, "" (NULL) otherwise, which never equals an owner
// column, so a policy fails closed.
func UID(sub string) string {
	if len(sub) != 36 {
		return ""
	}
	for i := 0; i < 36; i++ {
		c := sub[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return ""
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return ""
		}
	}
	return strings.ToLower(sub)
}

// Signer signs tokens with one key. It is safe for concurrent use and keeps
// its HMAC states for reuse, since one is needed on every db_query call.
type Signer struct {
	macs sync.Pool
}

// NewSigner returns a Signer for key.
func NewSigner(key []byte) *Signer {
	k := bytes.Clone(key)
	return &Signer{macs: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

// Sign returns the token for id signed with key.
func Sign(key []byte, id Identity) string { return NewSigner(key).Sign(id) }

// Sign returns the token for id.
func (s *Signer) Sign(id Identity) string {
	claims := id.Claims
	if len(claims) == 0 {
		claims = []byte("{}")
	}
	var b strings.Builder
	b.Grow(160 + len(id.Sub)*4/3 + len(claims)*4/3)
	field := func(s string) { b.WriteString(s); b.WriteByte('|') }
	field(Version)
	field(base64.StdEncoding.EncodeToString([]byte(id.Sub)))
	field(UID(id.Sub))
	field(id.Role)
	field(id.DBRole)
	field(strconv.FormatInt(id.PID, 10))
	field(strconv.FormatInt(id.NotBefore, 10))
	field(strconv.FormatInt(id.NotAfter, 10))
	field(strconv.FormatInt(id.Expires.UnixMilli(), 10))
	b.WriteString(base64.StdEncoding.EncodeToString(claims))
	mac := s.macs.Get().(hash.Hash)
	defer s.macs.Put(mac)
	mac.Reset()
	return seal(mac, b.String())
}

// SignLegacy returns the token aerofn signed before migration 007 (v1),
// bound to the exact transaction start xact: the database still accepts it,
// and the attack suite forges and replays it.
func SignLegacy(key []byte, id Identity, xact int64) string {
	claims := id.Claims
	if len(claims) == 0 {
		claims = []byte("{}")
	}
	msg := strings.Join([]string{VersionLegacy, base64.StdEncoding.EncodeToString([]byte(id.Sub)), id.Role,
		strconv.FormatInt(id.PID, 10), strconv.FormatInt(xact, 10), strconv.FormatInt(id.Expires.UnixMilli(), 10),
		base64.StdEncoding.EncodeToString(claims)}, "|")
	return seal(hmac.New(sha256.New, key), msg)
}

func seal(mac hash.Hash, msg string) string {
	mac.Write([]byte(msg))
	return msg + "|" + hex.EncodeToString(mac.Sum(nil))
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
