package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// The database verifies with sha256(opad || sha256(ipad || msg)); that must
// be HMAC-SHA256 as Go computes it.
func TestPadsAreHMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	msg := []byte("v1|x|anon|1|2|3|e30=")
	ipad, opad := Pads(key)
	inner := sha256.Sum256(append(append([]byte{}, ipad...), msg...))
	outer := sha256.Sum256(append(append([]byte{}, opad...), inner[:]...))
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	if !hmac.Equal(outer[:], m.Sum(nil)) {
		t.Fatal("pads do not reproduce HMAC-SHA256")
	}
}

func TestSignFormat(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok := Sign(key, Identity{Sub: "a|b'c", Role: "authenticated", PID: 42, Xact: 7, Expires: time.UnixMilli(99), Claims: []byte(`{"x":"'"}`)})
	parts := strings.Split(tok, "|")
	if len(parts) != 8 || parts[0] != Version || parts[2] != "authenticated" || parts[3] != "42" || parts[4] != "7" || parts[5] != "99" {
		t.Fatalf("token %q", tok)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts[:7], "|")))
	if hex.EncodeToString(m.Sum(nil)) != parts[7] {
		t.Error("signature is not over the first seven fields")
	}
	if !SafeLiteral(tok) {
		t.Errorf("a signed token must be a safe SQL literal: %q", tok)
	}
	if SafeLiteral("x'; SET ROLE postgres; --") {
		t.Error("SafeLiteral admitted a quote")
	}
}

func TestSignWindowFormat(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok := Sign(key, Identity{Sub: "u", Role: "anon", PID: 42, Xact: 5, NotBefore: 7, NotAfter: 8, Expires: time.UnixMilli(99)})
	parts := strings.Split(tok, "|")
	if len(parts) != 9 || parts[0] != VersionWindow || parts[3] != "42" || parts[4] != "7" || parts[5] != "8" || parts[6] != "99" {
		t.Fatalf("token %q", tok)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts[:8], "|")))
	if hex.EncodeToString(m.Sum(nil)) != parts[8] {
		t.Error("signature is not over the first eight fields")
	}
	if !SafeLiteral(tok) {
		t.Errorf("a signed token must be a safe SQL literal: %q", tok)
	}
}
