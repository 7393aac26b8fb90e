package hostfn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aerodb/aerofn/internal/abi"
)

// Fetcher performs http_fetch requests.
type Fetcher struct {
	client      *http.Client
	MaxBody     int64
	MaxRequest  int
	MaxDuration time.Duration
}

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// AllowPrivate lets functions reach loopback, private and every other
	// special-purpose address (for tests and single-machine set-ups). Off, an
	// allow-listed name that resolves into any block of specialPurpose is
	// refused at connect time, which also defeats DNS rebinding.
	AllowPrivate bool
	MaxBody      int64         // response bytes; default 5 MiB
	MaxDuration  time.Duration // per request; default 30 s
	// Transport, when set, replaces the dialing transport (and with it the
	// private-address check): tests route an allow-listed public name, such
	// as the seed's https://warehouse.example.com, to a local server. The
	// allow-list, limits and redirect checks still apply.
	Transport http.RoundTripper
}

// NewFetcher returns a Fetcher.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 5 << 20
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 30 * time.Second
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("address %s is not public: %w", host, err)
			}
			return checkPublic(ip)
		}
	}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second, Proxy: nil}
	f := &Fetcher{MaxBody: cfg.MaxBody, MaxRequest: 5 << 20, MaxDuration: cfg.MaxDuration}
	f.client = &http.Client{Transport: tr}
	if cfg.Transport != nil {
		f.client.Transport = cfg.Transport
	}
	return f
}

// fetchRequest is the guest's request; a binary body is base64 with
// body_encoding "base64".
type fetchRequest struct {
	URL          string            `json:"url"`
	Method       string            `json:"method"`
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body"`
	BodyEncoding string            `json:"body_encoding"`
}

// fetchReply is the answer; a body that is not UTF-8 text is sent as base64
// with body_encoding "base64" (JSON strings cannot carry arbitrary bytes).
type fetchReply struct {
	Status       int            `json:"status"`
	Headers      map[string]any `json:"headers"` // a string, or a list for a repeated header
	Body         string         `json:"body"`
	BodyEncoding string         `json:"body_encoding,omitempty"`
}

// HostAllowed reports whether host matches an allow-list entry: an exact name
// or "*.suffix" for its subdomains.
func HostAllowed(allowed []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range allowed {
		a = strings.ToLower(a)
		if suffix, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == a {
			return true
		}
	}
	return false
}

// Handle runs one request against the allow-list.
func (f *Fetcher) Handle(ctx context.Context, allowed []string, request []byte) []byte {
	if len(request) > f.MaxRequest {
		return abi.ErrorReply("request_too_large", fmt.Sprintf("request exceeds %d bytes", f.MaxRequest))
	}
	var req fetchRequest
	if err := json.Unmarshal(request, &req); err != nil {
		return abi.ErrorReply("bad_request", "request is not valid JSON: "+err.Error())
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return abi.ErrorReply("bad_request", fmt.Sprintf("%q is not an http or https URL", req.URL))
	}
	if u.User != nil {
		return abi.ErrorReply("bad_request", "URLs with credentials are not allowed")
	}
	if !HostAllowed(allowed, u.Hostname()) {
		return abi.ErrorReply("host_not_allowed", fmt.Sprintf("host %q is not in the function's allowed_hosts", u.Hostname()))
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	reqBody := []byte(req.Body)
	switch req.BodyEncoding {
	case "":
	case "base64":
		if reqBody, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return abi.ErrorReply("bad_request", "body is not valid base64: "+err.Error())
		}
	default:
		return abi.ErrorReply("bad_request", fmt.Sprintf("body_encoding %q is not base64 (or empty)", req.BodyEncoding))
	}
	ctx, cancel := context.WithTimeout(ctx, f.MaxDuration)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, strings.ToUpper(req.Method), u.String(), bytes.NewReader(reqBody))
	if err != nil {
		return abi.ErrorReply("bad_request", err.Error())
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	client := *f.client
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if !HostAllowed(allowed, r.URL.Hostname()) {
			return fmt.Errorf("redirect to %q, which is not in allowed_hosts", r.URL.Hostname())
		}
		return nil
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return abi.ErrorReply("timeout", "request did not finish before the deadline")
		}
		return abi.ErrorReply("fetch_failed", err.Error())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.MaxBody+1))
	if err != nil {
		return abi.ErrorReply("fetch_failed", "reading response: "+err.Error())
	}
	if int64(len(body)) > f.MaxBody {
		return abi.ErrorReply("response_too_large", fmt.Sprintf("response body exceeds %d bytes", f.MaxBody))
	}
	rep := fetchReply{Status: resp.StatusCode, Headers: map[string]any{}, Body: string(body)}
	if !utf8.Valid(body) {
		rep.Body, rep.BodyEncoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	for k, vs := range resp.Header {
		if len(vs) == 1 {
			rep.Headers[strings.ToLower(k)] = vs[0]
		} else if len(vs) > 1 {
			rep.Headers[strings.ToLower(k)] = vs
		}
	}
	b, _ := json.Marshal(rep)
	return b
}
