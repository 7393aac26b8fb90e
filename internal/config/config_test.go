package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "aerofn.conf")
	if err := os.WriteFile(file, []byte("# comment\nAEROFN_LISTEN=file:1\nAEROFN_LOG_LEVEL=warn\nexport AEROFN_MAX_CONCURRENCY=\"7\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c Config
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--listen", "flag:1", "--config", file}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AEROFN_LISTEN": "env:1", "AEROFN_LOG_LEVEL": "debug"}
	if err := c.Resolve(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "flag:1" || c.LogLevel != "debug" || c.MaxConcurrency != 7 || c.RolePoolSize != 10 || c.DataDir != "./.aerofn/data" || c.CORSOrigins != "*" {
		t.Fatalf("resolved: %+v", c)
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	good := Config{DatabaseURL: "postgres://x", JWTSecret: string(make([]byte, 32)), SecretsKey: string(make([]byte, 32)),
		MaxConcurrency: 1, RolePoolSize: 1, LogLevel: "info"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for setting, mutate := range map[string]func(*Config){
		"AEROFN_JWT_SECRET":                 func(c *Config) { c.JWTSecret = "short" },
		"AEROFN_SECRETS_KEY":                func(c *Config) { c.SecretsKey = "" },
		"AEROFN_DATABASE_URL":               func(c *Config) { c.DatabaseURL = "" },
		"AEROFN_MAX_CONCURRENCY":            func(c *Config) { c.MaxConcurrency = 0 },
		"AEROFN_ROLE_POOL_SIZE":             func(c *Config) { c.RolePoolSize = 5000 },
		"AEROFN_LOG_LEVEL":                  func(c *Config) { c.LogLevel = "loud" },
		"AEROFN_CORS_ORIGINS":               func(c *Config) { c.CORSOrigins = "https://app.example.com,app.example.com" },
		"AEROFN_PPROF_LISTEN":               func(c *Config) { c.PprofListen = "0.0.0.0:6060" },
		"AEROFN_DEPLOY_PROPAGATION_TIMEOUT": func(c *Config) { c.DeployPropagationTimeout = -time.Second },
	} {
		c := good
		mutate(&c)
		var fe *FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Setting != setting {
			t.Errorf("%s: got %v", setting, err)
		}
	}
	for in, want := range map[string]int{"*": 1, "none": 0, "https://a.example.com, http://127.0.0.1:5173": 2, "https://*.example.com": 1} {
		c := good
		c.CORSOrigins = in
		if err := c.Validate(); err != nil || len(c.Origins()) != want {
			t.Errorf("AEROFN_CORS_ORIGINS=%q: %v, %v", in, c.Origins(), err)
		}
	}
	for in, ok := range map[string]bool{"127.0.0.1:6060": true, "[::1]:0": true, "localhost:6060": true,
		":6060": false, "10.0.0.1:6060": false, "example.com:6060": false, "127.0.0.1": false} {
		c := good
		c.PprofListen = in
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("AEROFN_PPROF_LISTEN=%q: %v", in, err)
		}
	}
	var c Config
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.Bind(fs)
	var fe *FieldError
	if err := c.Resolve(fs, func(k string) string {
		if k == "AEROFN_MAX_CONCURRENCY" {
			return "lots"
		}
		return ""
	}); !errors.As(err, &fe) || fe.Setting != "AEROFN_MAX_CONCURRENCY" {
		t.Fatalf("bad number: %v", err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("AEROFN_LISTEN=x\nlisten = y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{bad: "line 2", filepath.Join(dir, "missing.conf"): "reading config file"} {
		var c Config
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		c.Bind(fs)
		_ = fs.Parse([]string{"--config", file})
		if err := c.Resolve(fs, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", file, err, want)
		}
	}
}

// TestRecordsRetentionSettings: the defaults keep 7 days and 100,000
// records per function; 0 turns either off; a negative value is refused.
func TestRecordsRetentionSettings(t *testing.T) {
	resolve := func(env map[string]string) Config {
		t.Helper()
		var c Config
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		c.Bind(fs)
		if err := c.Resolve(fs, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := resolve(nil); c.RecordsMaxAge != 7*24*time.Hour || c.RecordsMaxPerFunction != 100000 {
		t.Fatalf("defaults: %v, %d", c.RecordsMaxAge, c.RecordsMaxPerFunction)
	}
	if c := resolve(map[string]string{"AEROFN_RECORDS_MAX_AGE": "0", "AEROFN_RECORDS_MAX_PER_FUNCTION": "0"}); c.RecordsMaxAge != 0 || c.RecordsMaxPerFunction != 0 {
		t.Fatalf("0 must turn retention off: %v, %d", c.RecordsMaxAge, c.RecordsMaxPerFunction)
	}
	c := resolve(map[string]string{"AEROFN_RECORDS_MAX_AGE": "-1h", "AEROFN_DATABASE_URL": "postgres://x",
		"AEROFN_JWT_SECRET": strings.Repeat("j", 32), "AEROFN_SECRETS_KEY": strings.Repeat("s", 32)})
	var fe *FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Setting != "AEROFN_RECORDS_MAX_AGE" {
		t.Fatalf("negative max age: %v", err)
	}
}
