package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/auth"
)

// client talks to a running node's API as the service role.
type client struct {
	url, token string
	http       *http.Client
}

type clientFlags struct{ url, token string }

func (f *clientFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "url", "", "aerofn API base URL (AEROFN_URL, default http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&f.token, "token", "", "service_role token (AEROFN_SERVICE_KEY; else signed with AEROFN_JWT_SECRET)")
}

func (f *clientFlags) client() (*client, error) {
	c := &client{url: f.url, token: f.token, http: &http.Client{Timeout: 5 * time.Minute}}
	if c.url == "" {
		c.url = getenv("AEROFN_URL")
	}
	if c.url == "" {
		c.url = "http://127.0.0.1:8080"
	}
	c.url = strings.TrimSuffix(c.url, "/")
	if c.token == "" {
		c.token = getenv("AEROFN_SERVICE_KEY")
	}
	if c.token == "" {
		secret := getenv("AEROFN_JWT_SECRET")
		if secret == "" {
			return nil, errors.New("no token: set AEROFN_SERVICE_KEY, pass --token, or set AEROFN_JWT_SECRET to sign one")
		}
		t, err := auth.Sign(secret, auth.RoleService, "", time.Hour)
		if err != nil {
			return nil, err
		}
		c.token = t
	}
	return c, nil
}

// do sends a request and returns the body of a 2xx answer; any other status
// becomes an error carrying the API's message.
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
		return nil, 0, fmt.Errorf("calling %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Code, Message string }
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			return b, resp.StatusCode, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Code, e.Message)
		}
		return b, resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
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

func printJSON(w io.Writer, b []byte) {
	var v any
	if json.Unmarshal(b, &v) != nil {
		_, _ = w.Write(b)
		return
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(out))
}
