package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestVerify(t *testing.T) {
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c jwt.MapClaims, method jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	user, _ := Sign(secret, RoleAuthenticated, "u-1", time.Hour)
	p, err := v.Verify(user)
	if err != nil || p.Role != RoleAuthenticated || p.UserID != "u-1" {
		t.Fatalf("user token: %+v %v", p, err)
	}
	svc, _ := Sign(secret, RoleService, "", 0)
	if p, err := v.Verify(svc); err != nil || p.Role != RoleService {
		t.Fatalf("service token: %+v %v", p, err)
	}
	bad := map[string]string{
		"wrong secret":          sign(jwt.MapClaims{"role": "anon"}, jwt.SigningMethodHS256, []byte("another secret, another secret!!")),
		"expired":               sign(jwt.MapClaims{"role": "anon", "exp": time.Now().Add(-time.Minute).Unix()}, jwt.SigningMethodHS256, []byte(secret)),
		"not yet valid":         sign(jwt.MapClaims{"role": "anon", "nbf": time.Now().Add(time.Hour).Unix()}, jwt.SigningMethodHS256, []byte(secret)),
		"issued in the future":  sign(jwt.MapClaims{"role": "anon", "iat": time.Now().Add(time.Minute).Unix()}, jwt.SigningMethodHS256, []byte(secret)),
		"HS512 not allowed":     sign(jwt.MapClaims{"role": "anon"}, jwt.SigningMethodHS512, []byte(secret)),
		"unknown role":          sign(jwt.MapClaims{"role": "postgres"}, jwt.SigningMethodHS256, []byte(secret)),
		"no role":               sign(jwt.MapClaims{"sub": "x"}, jwt.SigningMethodHS256, []byte(secret)),
		"authenticated, no sub": sign(jwt.MapClaims{"role": "authenticated"}, jwt.SigningMethodHS256, []byte(secret)),
		"alg none":              sign(jwt.MapClaims{"role": "service_role"}, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"garbage":               "a.b.c",
	}
	// A clock a few seconds ahead of this node's is tolerated.
	skewed := sign(jwt.MapClaims{"role": "anon", "iat": time.Now().Add(3 * time.Second).Unix()}, jwt.SigningMethodHS256, []byte(secret))
	if _, err := v.Verify(skewed); err != nil {
		t.Errorf("iat 3 s ahead: %v", err)
	}
	for name, tok := range bad {
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: got %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestFromHeader(t *testing.T) {
	if _, err := FromHeader(""); !errors.Is(err, ErrMissingToken) {
		t.Fatalf("empty: %v", err)
	}
	for _, h := range []string{"Basic abc", "Bearer", "Bearer   ", "token"} {
		if _, err := FromHeader(h); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%q: %v", h, err)
		}
	}
	if tok, err := FromHeader("bearer abc.def"); err != nil || tok != "abc.def" {
		t.Fatalf("lower-case scheme: %q %v", tok, err)
	}
}

// A token that verified once is remembered, but never past its exp (plus
// the leeway) nor past a minute; a rejected token is never remembered.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	v, err := NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v.now = func() time.Time { return now }
	tok, _ := Sign(secret, RoleAuthenticated, "u-1", 10*time.Second)
	for range 2 {
		if p, err := v.Verify(tok); err != nil || p.UserID != "u-1" {
			t.Fatalf("fresh token: %+v %v", p, err)
		}
	}
	now = now.Add(16 * time.Second) // past exp + 5 s leeway
	if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token after a cached check: %v", err)
	}

	// Without exp, a minute at most, then the token is checked again (here
	// against a verifier whose secret no longer matches it).
	svc, _ := Sign(secret, RoleService, "", 0)
	if _, err := v.Verify(svc); err != nil {
		t.Fatal(err)
	}
	v.secret = []byte("another secret, another secret!!")
	if _, err := v.Verify(svc); err != nil {
		t.Fatalf("within the minute: %v", err)
	}
	now = now.Add(61 * time.Second)
	if _, err := v.Verify(svc); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after the minute: %v", err)
	}
	if len(v.verified) != 0 {
		t.Fatalf("%d tokens still cached after both failed", len(v.verified))
	}
}
