// Package auth verifies the HS256 JWTs that callers present and turns them into
// the principal a call acts for.
package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is a database role a call can act as.
type Role string

const (
	RoleAnon          Role = "anon"
	RoleAuthenticated Role = "authenticated"
	RoleService       Role = "service_role"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool {
	return r == RoleAnon || r == RoleAuthenticated || r == RoleService
}

// Principal is who a call acts for. The zero value is not valid; use Anon().
type Principal struct {
	Role   Role           `json:"role"`
	UserID string         `json:"user_id,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
}

// Anon is the principal of a call without a token.
func Anon() Principal { return Principal{Role: RoleAnon} }

// Service is the service-role principal (only ever explicit).
func Service() Principal { return Principal{Role: RoleService} }

var (
	ErrMissingToken = errors.New("missing bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// Verifier checks HS256 tokens signed with a shared secret.
type Verifier struct {
	secret []byte
	now    func() time.Time

	// Tokens that verified, so a client that presents the same token on
	// every request (the usual case: an API key, a session's JWT) is not
	// parsed and HMAC'd again each time, which was a tenth of a small
	// function's server CPU. An entry is trusted until the token's exp (plus
	// the leeway) and at most verifiedTTL; only verified tokens enter, so
	// nobody can fill it with forgeries. Readers share the lock: every
	// request reads the cache, and with a plain mutex a holder whose thread
	// the kernel descheduled made every other request wait for it.
	mu       sync.RWMutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	p     Principal
	until time.Time
}

const (
	verifiedTTL = time.Minute
	// maxVerified bounds the cache (a few hundred bytes per token); past it
	// the cache starts over.
	maxVerified = 4096
)

// NewVerifier returns a Verifier for secret, which must not be empty.
func NewVerifier(secret string) (*Verifier, error) {
	if secret == "" {
		return nil, errors.New("jwt secret is empty")
	}
	return &Verifier{secret: []byte(secret), now: time.Now, verified: map[string]verifiedToken{}}, nil
}

// clockSkew is how far the issuer's clock may be off this node's: exp, nbf
// and iat are checked with this much leeway, and no more.
const clockSkew = 5 * time.Second

// Verify parses and checks token and returns its principal. Any failure is
// ErrInvalidToken (wrapped with the reason); a token is never downgraded. A
// token issued in the future (iat more than clockSkew ahead) is refused: it
// was not made by an issuer whose clock is right, and it would outlive the
// lifetime its exp suggests.
//
// The principal's Claims are shared by every call with the same token and
// must not be modified.
func (v *Verifier) Verify(token string) (Principal, error) {
	now := v.now()
	v.mu.RLock()
	c, ok := v.verified[token]
	v.mu.RUnlock()
	if ok && now.Before(c.until) {
		return c.p, nil
	}
	p, err := v.verify(token)
	if err != nil {
		if ok {
			v.mu.Lock()
			delete(v.verified, token)
			v.mu.Unlock()
		}
		return p, err
	}
	until := now.Add(verifiedTTL)
	if exp, err := p.claimsExpiry(); err == nil && exp != nil && exp.Add(clockSkew).Before(until) {
		until = exp.Add(clockSkew)
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerified {
		clear(v.verified)
	}
	v.verified[token] = verifiedToken{p: p, until: until}
	v.mu.Unlock()
	return p, nil
}

func (p Principal) claimsExpiry() (*jwt.NumericDate, error) {
	return jwt.MapClaims(p.Claims).GetExpirationTime()
}

func (v *Verifier) verify(token string) (Principal, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.secret, nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(v.now), jwt.WithLeeway(clockSkew), jwt.WithIssuedAt())
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	role, _ := claims["role"].(string)
	p := Principal{Role: Role(role), Claims: claims}
	if !p.Role.Valid() {
		return Principal{}, fmt.Errorf("%w: role %q is not anon, authenticated or service_role", ErrInvalidToken, role)
	}
	if sub, ok := claims["sub"].(string); ok {
		p.UserID = sub
	}
	if p.Role == RoleAuthenticated && p.UserID == "" {
		return Principal{}, fmt.Errorf("%w: authenticated token without sub", ErrInvalidToken)
	}
	return p, nil
}

// FromHeader extracts the bearer token from an Authorization header value.
func FromHeader(h string) (string, error) {
	if h == "" {
		return "", ErrMissingToken
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("%w: authorization header is not \"Bearer <token>\"", ErrInvalidToken)
	}
	return strings.TrimSpace(tok), nil
}

// Sign makes a token; used by the CLI's `keys` command and by tests.
func Sign(secret string, role Role, sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := jwt.MapClaims{"role": string(role), "iat": now.Unix(), "iss": "aerofn"}
	if sub != "" {
		c["sub"] = sub
	}
	if ttl > 0 {
		c["exp"] = now.Add(ttl).Unix()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}
