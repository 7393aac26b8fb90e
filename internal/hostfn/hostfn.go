// Package hostfn implements what the host functions of docs/ABI.md do for one
// invocation: env (whitelist and secrets), db_query (delegated to the
// RLS-scoped executor with the call's principal) and http_fetch (allow-list).
// The engine only moves bytes; every decision about the outside world is here.
package hostfn

import (
	"context"
	"sync"

	"github.com/aerodb/aerofn/internal/abi"
	"github.com/aerodb/aerofn/internal/auth"
)

// DB runs one db_query request (ABI JSON in, reply JSON out) for a principal.
type DB interface {
	Handle(ctx context.Context, p auth.Principal, request []byte) []byte
}

// Secrets resolves env() values: secrets (secret true), which the invoker
// scrubs from what leaves the call, and plain configuration values.
type Secrets interface {
	Lookup(ctx context.Context, name string) (value string, secret, ok bool, err error)
}

// Call is the Host of one invocation (it implements engine.Host).
type Call struct {
	Principal auth.Principal
	EnvKeys   []string
	Secrets   Secrets
	DB        DB
	Fetcher   *Fetcher
	Allowed   []string // http_fetch allow-list

	mu   sync.Mutex
	read []string // secret values handed to the guest, for redaction
}

// Env returns a whitelisted secret or plain value. ctx ends at the call's
// deadline: a lookup still waiting then (a secrets reload stalled on the
// database) gives up and env() answers as for a missing name, and the engine
// stops the call as timed out.
func (c *Call) Env(ctx context.Context, key string) (string, bool) {
	allowed := false
	for _, k := range c.EnvKeys {
		if k == key {
			allowed = true
			break
		}
	}
	if !allowed || c.Secrets == nil {
		return "", false
	}
	v, secret, ok, err := c.Secrets.Lookup(ctx, key)
	if err != nil || !ok {
		return "", false
	}
	if secret {
		c.mu.Lock()
		c.read = append(c.read, v)
		c.mu.Unlock()
	}
	return v, true
}

// SecretsRead returns the secret values the guest obtained through env(),
// which the invoker scrubs from logs, records and responses (plain values
// are not secret and are left alone).
func (c *Call) SecretsRead() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.read...)
}

// DBQuery runs SQL as the call's principal.
func (c *Call) DBQuery(ctx context.Context, request []byte) []byte {
	if c.DB == nil {
		return abi.ErrorReply("unavailable", "db_query is not configured on this server")
	}
	return c.DB.Handle(ctx, c.Principal, request)
}

// HTTPFetch fetches an allow-listed URL.
func (c *Call) HTTPFetch(ctx context.Context, request []byte) []byte {
	if c.Fetcher == nil {
		return abi.ErrorReply("unavailable", "http_fetch is not configured on this server")
	}
	return c.Fetcher.Handle(ctx, c.Allowed, request)
}
