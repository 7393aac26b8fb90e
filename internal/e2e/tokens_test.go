package e2e

import (
	"encoding/base64"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/aerodb/aerofn/internal/testenv"
)

func signExpired() (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "anon", "exp": time.Now().Add(-time.Hour).Unix()}).
		SignedString([]byte(testenv.JWTSecret))
}

func wrongSecretToken() string {
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"role": "service_role"}).SignedString([]byte("another-secret-another-secret-another"))
	return s
}

func algNoneToken() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc([]byte(`{"role":"service_role"}`)) + "."
}
