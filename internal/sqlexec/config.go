package sqlexec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
)

// RoleNames are the database roles that functions log in as, one per
// principal role. Roles are cluster-wide: every database on a cluster that
// aerofn serves shares them.
type RoleNames struct {
	Anon          string // default "anon"
	Authenticated string // default "authenticated"
	Service       string // default "service_role"
}

// Config configures Setup and the Executor. The zero value plus AdminURL is
// usable; WithDefaults fills the rest.
type Config struct {
	// AdminURL is the admin connection (AEROFN_DATABASE_URL). The role
	// connections use the same host, port, database and TLS settings with the
	// role's name as user. The Executor also keeps a two-connection admin
	// pool on it to read the signing key and to terminate a backend whose
	// query was abandoned.
	AdminURL string

	Roles RoleNames

	// PoolSize bounds the connections per role (default 10).
	PoolSize int32

	// FunctionShare bounds the connections of one role's pool that the
	// calls of one function may hold at once (default: half the pool,
	// rounded up); PrincipalShare bounds those of one user, whatever the
	// function (default: a quarter of the pool, rounded up). Callers
	// without a user id (anon, service_role) are bounded by FunctionShare
	// only. A query over a share waits in line for one of its own
	// function's (or user's) connections, never past its deadline and, if
	// ShareWait is set, at most ShareWait; then it fails with
	// connection_share_exceeded. With a pool of 1 the shares cannot protect
	// anyone: give the pool at least 2 connections.
	FunctionShare  int32
	PrincipalShare int32
	ShareWait      time.Duration

	// MaxRows and MaxBytes bound one result (defaults 10,000 rows and 10 MiB
	// of reply JSON); beyond them the call fails with too_many_rows or
	// result_too_large and nothing it wrote is committed.
	MaxRows  int
	MaxBytes int

	// DefaultTimeout is the time a call gets when its context has no
	// deadline (default 10 s, the default function timeout).
	DefaultTimeout time.Duration

	// StatementTimeoutCeiling caps statement_timeout, and is the session's
	// own statement_timeout before the host sets the call's (default 5 min,
	// the longest function timeout).
	StatementTimeoutCeiling time.Duration

	// IdleInTransactionTimeout is set on the roles so that a connection lost
	// inside a transaction cannot hold its locks for long (default 10 s).
	IdleInTransactionTimeout time.Duration

	// TempFileLimit is temp_file_limit on the roles (default "1GB"), which
	// a function cannot raise (the setting is superuser-only).
	TempFileLimit string

	// RolePasswordSecret, when set, gives each role the password
	// hex(HMAC-SHA256(RolePasswordSecret, "aerofn role password:" + role)),
	// which Setup sets and the Executor logs in with. Empty means the server
	// authenticates the roles some other way (trust on loopback,
	// certificates). It has nothing to do with the identity tokens: those are
	// signed with a random key that Setup generates per database and keeps
	// in aerofn.rls_signing_key. aerofn passes AEROFN_SECRETS_KEY.
	RolePasswordSecret string
}

// Defaults for Config.
const (
	DefaultPoolSize                 = 10
	DefaultMaxRows                  = 10_000
	DefaultMaxBytes                 = 10 << 20
	DefaultTimeout                  = 10 * time.Second
	DefaultStatementTimeoutCeiling  = 5 * time.Minute
	DefaultIdleInTransactionTimeout = 10 * time.Second
	DefaultTempFileLimit            = "1GB"
)

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.Roles.Anon == "" {
		c.Roles.Anon = string(auth.RoleAnon)
	}
	if c.Roles.Authenticated == "" {
		c.Roles.Authenticated = string(auth.RoleAuthenticated)
	}
	if c.Roles.Service == "" {
		c.Roles.Service = string(auth.RoleService)
	}
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.FunctionShare <= 0 {
		c.FunctionShare = (c.PoolSize + 1) / 2
	}
	if c.PrincipalShare <= 0 {
		c.PrincipalShare = (c.PoolSize + 3) / 4
	}
	if c.MaxRows <= 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	if c.StatementTimeoutCeiling <= 0 {
		c.StatementTimeoutCeiling = DefaultStatementTimeoutCeiling
	}
	if c.IdleInTransactionTimeout <= 0 {
		c.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	if c.TempFileLimit == "" {
		c.TempFileLimit = DefaultTempFileLimit
	}
	return c
}

// ConfigError names the field that is wrong.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "sqlexec config: " + e.Field + ": " + e.Reason }

var roleNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
var tempFileLimitRE = regexp.MustCompile(`^(-1|[0-9]+ ?(kB|MB|GB|TB)?)$`)

// Validate checks a config that WithDefaults has filled.
func (c Config) Validate() error {
	if c.AdminURL == "" {
		return &ConfigError{"AdminURL", "is empty"}
	}
	seen := map[string]string{}
	for field, name := range map[string]string{"Roles.Anon": c.Roles.Anon, "Roles.Authenticated": c.Roles.Authenticated, "Roles.Service": c.Roles.Service} {
		if !roleNameRE.MatchString(name) {
			return &ConfigError{field, fmt.Sprintf("%q is not a lower-case SQL identifier", name)}
		}
		if name == "postgres" || name == "public" || len(name) >= 3 && name[:3] == "pg_" {
			return &ConfigError{field, fmt.Sprintf("%q is reserved", name)}
		}
		if other, dup := seen[name]; dup {
			return &ConfigError{field, fmt.Sprintf("%q is also %s; each principal needs its own role", name, other)}
		}
		seen[name] = field
	}
	if c.MaxRows < 1 || c.MaxBytes < 1024 {
		return &ConfigError{"MaxRows/MaxBytes", "must be at least 1 row and 1 KiB"}
	}
	if !tempFileLimitRE.MatchString(c.TempFileLimit) {
		return &ConfigError{"TempFileLimit", fmt.Sprintf("%q is not a size such as 1GB", c.TempFileLimit)}
	}
	return nil
}

// roleFor maps a principal role to its database role.
func (c Config) roleFor(r auth.Role) (string, bool) {
	switch r {
	case auth.RoleAnon:
		return c.Roles.Anon, true
	case auth.RoleAuthenticated:
		return c.Roles.Authenticated, true
	case auth.RoleService:
		return c.Roles.Service, true
	}
	return "", false
}

// principals lists (principal, database role) in a fixed order.
func (c Config) principals() [][2]string {
	return [][2]string{
		{string(auth.RoleAnon), c.Roles.Anon},
		{string(auth.RoleAuthenticated), c.Roles.Authenticated},
		{string(auth.RoleService), c.Roles.Service},
	}
}

// rolePassword derives a role's password from RolePasswordSecret; "" when unset.
func (c Config) rolePassword(role string) string {
	if c.RolePasswordSecret == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(c.RolePasswordSecret))
	m.Write([]byte("aerofn role password:" + role))
	return hex.EncodeToString(m.Sum(nil))
}

// roleSettings are the per-database settings Setup puts on every function
// role, as pg_db_role_setting shows them; the Executor compares a new
// connection's settings against them to notice a role that changed its own
// defaults (ALTER ROLE self SET is open to every role).
func (c Config) roleSettings() []string {
	return []string{
		"idle_in_transaction_session_timeout=" + fmt.Sprint(c.IdleInTransactionTimeout.Milliseconds()),
		"statement_timeout=" + fmt.Sprint(c.StatementTimeoutCeiling.Milliseconds()),
		"temp_file_limit=" + c.TempFileLimit,
	}
}
