// Package config holds aerofn's settings. Each setting has one name used
// everywhere: a flag (--listen), an environment variable (AEROFN_LISTEN) and
// a line in the optional config file (AEROFN_LISTEN=...). A flag beats the
// environment, which beats the file, which beats the default.
package config

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/aerodb/aerofn/internal/registry"
)

// Config is every setting of `aerofn serve`.
type Config struct {
	// DatabaseURL is the admin connection: migrations, registry, queue.
	DatabaseURL string
	// Listen is the HTTP address.
	Listen string
	// PprofListen, when set, is a loopback address where Go's profiler
	// (net/http/pprof: CPU, heap, goroutine profiles and execution traces)
	// answers without authentication; empty, the default, serves none.
	PprofListen string
	// JWTSecret verifies HS256 tokens (at least 32 bytes).
	JWTSecret string
	// SecretsKey encrypts stored secrets, authenticates the compiled
	// artifacts nodes share through the database, and derives the function
	// roles' database passwords. It does not sign the identity tokens of
	// db_query: each database has its own random key for those (see
	// internal/sqlexec).
	SecretsKey string
	// DataDir holds the compiled-module cache.
	DataDir string
	// MaxConcurrency bounds calls running at once on this node.
	MaxConcurrency int
	// FetchAllowPrivate lets http_fetch reach loopback and private addresses.
	FetchAllowPrivate bool
	// RolePoolSize is the number of connections per function role.
	RolePoolSize int
	// ShutdownTimeout bounds how long a stop waits for running calls.
	ShutdownTimeout time.Duration
	// DeployPropagationTimeout bounds how long a deploy, rollback or patch
	// waits for every live node to serve the change before it answers
	// (0: it does not wait).
	DeployPropagationTimeout time.Duration
	// LogLevel: debug, info, warn, error.
	LogLevel string
	// CORSOrigins lists the browser origins that may call the API:
	// comma-separated, "*" for any, "none" for none.
	CORSOrigins string
	// RecordsMaxAge: invocation records older are pruned; 0 keeps them.
	RecordsMaxAge time.Duration
	// RecordsMaxPerFunction: a function's records beyond its newest this
	// many are pruned; 0: no cap.
	RecordsMaxPerFunction int
	// JSRuntime is the JavaScript runtime module; empty: aerofn-jsrt.wasm
	// next to the aerofn executable, when it is there.
	JSRuntime string
	// JSRuntimeCache, when set, holds the runtime's compiled artifact
	// instead of DataDir (nodes sharing a machine compile it once).
	JSRuntimeCache string
	// File is the optional config file that was read.
	File string
}

// FieldError names the setting that is wrong.
type FieldError struct {
	Setting string // the environment variable name
	Message string
}

func (e *FieldError) Error() string { return e.Setting + ": " + e.Message }

type setting struct {
	flag, env, help string
	str             *string
	num             *int
	boolean         *bool
	dur             *time.Duration
	def             string
}

func (c *Config) settings() []setting {
	return []setting{
		{flag: "database-url", env: "AEROFN_DATABASE_URL", help: "PostgreSQL admin connection URL", str: &c.DatabaseURL, def: "postgres://postgres@127.0.0.1:5432/aerofn?sslmode=disable"},
		{flag: "listen", env: "AEROFN_LISTEN", help: "HTTP listen address", str: &c.Listen, def: "127.0.0.1:8080"},
		{flag: "pprof-listen", env: "AEROFN_PPROF_LISTEN", help: "loopback address serving Go's profiler at /debug/pprof/ (off when empty)", str: &c.PprofListen},
		{flag: "jwt-secret", env: "AEROFN_JWT_SECRET", help: "HS256 secret for API tokens (>= 32 bytes)", str: &c.JWTSecret},
		{flag: "secrets-key", env: "AEROFN_SECRETS_KEY", help: "key that encrypts stored secrets (>= 32 bytes)", str: &c.SecretsKey},
		{flag: "data-dir", env: "AEROFN_DATA_DIR", help: "directory for the compiled-module cache", str: &c.DataDir, def: "./.aerofn/data"},
		{flag: "max-concurrency", env: "AEROFN_MAX_CONCURRENCY", help: "calls running at once on this node", num: &c.MaxConcurrency, def: "1000"},
		{flag: "fetch-allow-private", env: "AEROFN_FETCH_ALLOW_PRIVATE", help: "let http_fetch reach loopback/private addresses", boolean: &c.FetchAllowPrivate, def: "false"},
		{flag: "role-pool-size", env: "AEROFN_ROLE_POOL_SIZE", help: "database connections per function role", num: &c.RolePoolSize, def: "10"},
		{flag: "shutdown-timeout", env: "AEROFN_SHUTDOWN_TIMEOUT", help: "how long a stop waits for running calls", dur: &c.ShutdownTimeout, def: "30s"},
		{flag: "deploy-propagation-timeout", env: "AEROFN_DEPLOY_PROPAGATION_TIMEOUT", help: "how long a deploy waits for every live node to load the new version (0: no wait)", dur: &c.DeployPropagationTimeout, def: "5s"},
		{flag: "log-level", env: "AEROFN_LOG_LEVEL", help: "debug, info, warn or error", str: &c.LogLevel, def: "info"},
		{flag: "records-max-age", env: "AEROFN_RECORDS_MAX_AGE", help: "invocation records older than this are pruned (0: kept forever)", dur: &c.RecordsMaxAge, def: "168h"},
		{flag: "records-max-per-function", env: "AEROFN_RECORDS_MAX_PER_FUNCTION", help: "records kept per function, newest first (0: no cap)", num: &c.RecordsMaxPerFunction, def: "100000"},
		{flag: "js-runtime", env: "AEROFN_JS_RUNTIME", help: "the JavaScript runtime module (default: aerofn-jsrt.wasm next to the executable)", str: &c.JSRuntime},
		{flag: "js-runtime-cache", env: "AEROFN_JS_RUNTIME_CACHE", help: "directory for the JavaScript runtime's compiled artifact (default: the data dir)", str: &c.JSRuntimeCache},
		{flag: "cors-origins", env: "AEROFN_CORS_ORIGINS", help: `browser origins allowed to call the API: comma-separated, "*" (any) or "none"`, str: &c.CORSOrigins, def: "*"},
	}
}

// Bind registers every setting as a flag on fs, plus --config.
func (c *Config) Bind(fs *pflag.FlagSet) {
	for _, s := range c.settings() {
		help := fmt.Sprintf("%s (%s)", s.help, s.env)
		switch {
		case s.str != nil:
			fs.StringVar(s.str, s.flag, "", help)
		case s.num != nil:
			fs.IntVar(s.num, s.flag, 0, help)
		case s.boolean != nil:
			fs.BoolVar(s.boolean, s.flag, false, help)
		case s.dur != nil:
			fs.DurationVar(s.dur, s.flag, 0, help)
		}
	}
	fs.StringVar(&c.File, "config", "", "config file of AEROFN_*=value lines (AEROFN_CONFIG)")
}

// Resolve fills settings not given as flags from the environment, then the
// config file, then defaults; fs reports which flags were given.
func (c *Config) Resolve(fs *pflag.FlagSet, getenv func(string) string) error {
	if c.File == "" {
		c.File = getenv("AEROFN_CONFIG")
	}
	file := map[string]string{}
	if c.File != "" {
		var err error
		if file, err = readFile(c.File); err != nil {
			return err
		}
	}
	for _, s := range c.settings() {
		if fs != nil && fs.Changed(s.flag) {
			continue
		}
		v := getenv(s.env)
		if v == "" {
			v = file[s.env]
		}
		if v == "" {
			v = s.def
		}
		if v == "" {
			continue
		}
		if err := s.set(v); err != nil {
			return &FieldError{Setting: s.env, Message: err.Error()}
		}
	}
	return nil
}

func (s setting) set(v string) error {
	switch {
	case s.str != nil:
		*s.str = v
	case s.num != nil:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*s.num = n
	case s.boolean != nil:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*s.boolean = b
	case s.dur != nil:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s", v)
		}
		*s.dur = d
	}
	return nil
}

func readFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || !strings.HasPrefix(k, "AEROFN_") {
			return nil, fmt.Errorf("config file %s line %d: expected AEROFN_NAME=value", path, n)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out, sc.Err()
}

// Validate checks the resolved config.
func (c *Config) Validate() error {
	if c.DatabaseURL == "" {
		return &FieldError{"AEROFN_DATABASE_URL", "is required"}
	}
	if len(c.JWTSecret) < 32 {
		return &FieldError{"AEROFN_JWT_SECRET", "must be at least 32 bytes (try: openssl rand -hex 32)"}
	}
	if len(c.SecretsKey) < 32 {
		return &FieldError{"AEROFN_SECRETS_KEY", "must be at least 32 bytes (try: openssl rand -hex 32)"}
	}
	if c.MaxConcurrency < 1 {
		return &FieldError{"AEROFN_MAX_CONCURRENCY", "must be at least 1"}
	}
	if c.RolePoolSize < 1 || c.RolePoolSize > 1000 {
		return &FieldError{"AEROFN_ROLE_POOL_SIZE", "must be 1-1000"}
	}
	if c.DeployPropagationTimeout < 0 {
		return &FieldError{"AEROFN_DEPLOY_PROPAGATION_TIMEOUT", "must not be negative (0: deploys do not wait)"}
	}
	if c.RecordsMaxAge < 0 {
		return &FieldError{"AEROFN_RECORDS_MAX_AGE", "must not be negative (0 keeps records forever)"}
	}
	if c.RecordsMaxPerFunction < 0 {
		return &FieldError{"AEROFN_RECORDS_MAX_PER_FUNCTION", "must not be negative (0: no cap)"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &FieldError{"AEROFN_LOG_LEVEL", fmt.Sprintf("%q is not debug, info, warn or error", c.LogLevel)}
	}
	if c.PprofListen != "" && !loopback(c.PprofListen) {
		return &FieldError{"AEROFN_PPROF_LISTEN", fmt.Sprintf("%q is not a loopback address such as 127.0.0.1:6060 (the profiler has no authentication)", c.PprofListen)}
	}
	if _, err := registry.ParseOrigins(c.CORSOrigins); err != nil {
		return &FieldError{"AEROFN_CORS_ORIGINS", err.Error()}
	}
	return nil
}

// loopback reports whether addr is host:port with a loopback IP or
// "localhost" as the host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Origins is CORSOrigins as a list (empty: no cross-origin access).
func (c *Config) Origins() []string {
	o, _ := registry.ParseOrigins(c.CORSOrigins)
	return o
}
