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
	tok := Sign(key, Identity{Sub: "A1A1A1A1-0000-4000-8000-000000000001", Role: "authenticated", DBRole: "fn_auth", PID: 42,
		NotBefore: 7, NotAfter: 8, Expires: time.UnixMilli(99), Claims: []byte(`{"x":"'"}`)})
	parts := strings.Split(tok, "|")
	if len(parts) != 11 || parts[0] != Version || parts[2] != "a1a1a1a1-0000-4000-8000-000000000001" || parts[3] != "authenticated" ||
		parts[4] != "fn_auth" || parts[5] != "42" || parts[6] != "7" || parts[7] != "8" || parts[8] != "99" {
		t.Fatalf("token %q", tok)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts[:10], "|")))
	if hex.EncodeToString(m.Sum(nil)) != parts[10] {
		t.Error("signature is not over the fields before it")
	}
	if !SafeLiteral(tok) {
		t.Errorf("a signed token must be a safe SQL literal: %q", tok)
	}
	if SafeLiteral("x'; SET ROLE postgres; --") {
		t.Error("SafeLiteral admitted a quote")
	}
	// A sub with a '|' or a quote cannot break the format: it is base64.
	odd := Sign(key, Identity{Sub: "a|b'c", Role: "authenticated", DBRole: "r", Expires: time.UnixMilli(1)})
	if p := strings.Split(odd, "|"); len(p) != 11 || p[2] != "" || !SafeLiteral(odd) {
		t.Fatalf("token %q", odd)
	}
}

func TestSignLegacyFormat(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok := SignLegacy(key, Identity{Sub: "u", Role: "anon", PID: 42, Expires: time.UnixMilli(99)}, 5)
	parts := strings.Split(tok, "|")
	if len(parts) != 8 || parts[0] != VersionLegacy || parts[3] != "42" || parts[4] != "5" || parts[5] != "99" {
		t.Fatalf("token %q", tok)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts[:7], "|")))
	if hex.EncodeToString(m.Sum(nil)) != parts[7] {
		t.Error("signature is not over the first seven fields")
	}
}

func TestUID(t *testing.T) {
	for sub, want := range map[string]string{
		"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11":   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11":   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}": "", "a0eebc999c0b4ef8bb6d6bb9bd380a11": "", "user-42": "", "": "",
	} {
		if got := UID(sub); got != want {
			t.Errorf("UID(%q) = %q, want %q", sub, got, want)
		}
	}
}

// A Signer reuses its HMAC states: every token must still be the one a
// fresh signature gives, whatever was signed before it.
func TestSignerReusesStates(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := NewSigner(key)
	ids := []Identity{
		{Sub: "a", Role: "anon", DBRole: "anon", PID: 1, Expires: time.UnixMilli(5)},
		{Sub: "b", Role: "authenticated", DBRole: "authenticated", PID: 2, NotBefore: 3, NotAfter: 4, Expires: time.UnixMilli(6), Claims: []byte(`{"k":1}`)},
	}
	for i := range 20 {
		id := ids[i%2]
		if got, want := s.Sign(id), Sign(key, id); got != want {
			t.Fatalf("call %d: %q, want %q", i, got, want)
		}
	}
}
