package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/auth"
)

// client talks to a running node's API as the service role.
type client struct {
	url, token string
	// anonKey and jwtSecret, when known, let invoke act as anon or a user.
	anonKey, jwtSecret string
	http               *http.Client
}

// profile is one entry of the profile file.
type profile struct {
	URL        string `json:"url"`
	ServiceKey string `json:"service_key"`
	AnonKey    string `json:"anon_key"`
	JWTSecret  string `json:"jwt_secret"`
}

type profileFile struct {
	Profiles map[string]profile `json:"profiles"`
}

// configPath is the profile file: $AEROFN_CLI_CONFIG, else aerofn/config.json
// in the user's config directory.
func configPath() (string, error) {
	if p := getenv("AEROFN_CLI_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "aerofn", "config.json"), nil
}

// loadProfile reads the named profile; a missing file or profile is an empty
// one unless the name was asked for explicitly.
func loadProfile(name string, explicit bool) (profile, error) {
	path, err := configPath()
	if err != nil {
		return profile{}, nil //nolint:nilerr // no config dir: no profile
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if explicit {
			return profile{}, fmt.Errorf("profile %q asked for, but %s does not exist: create it (see aerofn --help)", name, path)
		}
		return profile{}, nil
	}
	if err != nil {
		return profile{}, err
	}
	var pf profileFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return profile{}, fmt.Errorf("reading %s: %v (it holds {\"profiles\": {\"NAME\": {\"url\", \"service_key\", \"anon_key\", \"jwt_secret\"}}})", path, err)
	}
	p, ok := pf.Profiles[name]
	if !ok && explicit {
		return profile{}, fmt.Errorf("%s has no profile %q", path, name)
	}
	return p, nil
}

type clientFlags struct{ url, token, profile string }

func (f *clientFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "url", "", "aerofn API base URL (AEROFN_URL; default http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&f.token, "service-key", "", "service_role token (AEROFN_SERVICE_KEY; else signed with AEROFN_JWT_SECRET)")
	cmd.Flags().StringVar(&f.token, "token", "", "same as --service-key")
	_ = cmd.Flags().MarkHidden("token")
	cmd.Flags().StringVar(&f.profile, "profile", "", "profile in the profile file (AEROFN_PROFILE; default \"default\")")
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func (f *clientFlags) client() (*client, error) {
	name, explicit := firstOf(f.profile, getenv("AEROFN_PROFILE")), true
	if name == "" {
		name, explicit = "default", false
	}
	p, err := loadProfile(name, explicit)
	if err != nil {
		return nil, err
	}
	c := &client{http: &http.Client{Timeout: 5 * time.Minute}}
	c.url = strings.TrimSuffix(firstOf(f.url, getenv("AEROFN_URL"), p.URL, "http://127.0.0.1:8080"), "/")
	c.jwtSecret = firstOf(getenv("AEROFN_JWT_SECRET"), p.JWTSecret)
	c.anonKey = firstOf(getenv("AEROFN_ANON_KEY"), p.AnonKey)
	c.token = firstOf(f.token, getenv("AEROFN_SERVICE_KEY"), p.ServiceKey)
	if c.token == "" {
		if c.jwtSecret == "" {
			return nil, errors.New("no service key: set AEROFN_SERVICE_KEY (aerofn keys prints one), pass --service-key, " +
				"set AEROFN_JWT_SECRET to sign one, or add a profile (see aerofn --help)")
		}
		t, err := auth.Sign(c.jwtSecret, auth.RoleService, "", time.Hour)
		if err != nil {
			return nil, err
		}
		c.token = t
	}
	return c, nil
}

// apiError is a non-2xx answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
	Method  string
	Path    string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		msg += " (check the service key: --service-key, AEROFN_SERVICE_KEY or AEROFN_JWT_SECRET must match the server's AEROFN_JWT_SECRET)"
	case e.Code == "not_found" && strings.Contains(e.Message, "does not exist"):
		msg += " (aerofn ls lists the deployed functions)"
	}
	return msg
}

// do sends a request and returns the body of a 2xx answer; any other status
// becomes an *apiError carrying the API's message.
func (c *client) do(method, path, contentType string, body io.Reader) ([]byte, int, error) {
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot reach the aerofn server at %s (%v): is `aerofn serve` running there? Set --url or AEROFN_URL to where it listens", c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, Method: method, Path: strings.SplitN(path, "?", 2)[0]}
		var body struct{ Code, Message string }
		if json.Unmarshal(b, &body) == nil && body.Code != "" {
			e.Code, e.Message = body.Code, body.Message
		} else {
			e.Message = strings.TrimSpace(string(b))
		}
		return b, resp.StatusCode, e
	}
	return b, resp.StatusCode, nil
}

func (c *client) json(method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	b, _, err := c.do(method, path, "application/json", body)
	return b, err
}

// getJSON GETs path and decodes the answer into v.
func (c *client) getJSON(path string, v any) error {
	b, err := c.json("GET", path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding the answer of GET %s: %w", path, err)
	}
	return nil
}
