// Package webhook verifies signed deliveries from external services before a
// function sees them, and makes each delivery run once. Four schemes are
// accepted, all HMAC-SHA256 with a secret stored in aerofn's secrets:
//
//	webhook-id, webhook-timestamp, webhook-signature: v1,<base64 hmac(key, "<id>.<t>.<body>")>
//	    (Standard Webhooks, as Svix, Clerk, Supabase Auth hooks and others
//	    send; key is the base64 after the secret's "whsec_" prefix)
//	Stripe-Signature: t=<unix seconds>,v1=<hex hmac(secret, "<t>.<body>")>
//	    (Stripe's scheme; the secret, "whsec_…" included, is the key)
//	X-Aerofn-Signature: t=<unix seconds>,v1=<hex hmac(secret, "<t>.<body>")>
//	    (the same scheme under aerofn's name, for senders of one's own)
//	X-Hub-Signature-256: sha256=<hex hmac(secret, body)>
//	    (GitHub's scheme)
//
// The timestamped schemes refuse deliveries more than Tolerance away from
// now, so a captured request cannot be replayed later. Comparisons are
// constant-time; several v1 signatures (a secret being rotated) are allowed,
// one matching is enough.
//
// # Replays and retries
//
// A delivery is known by what its signature covers (Delivery.Key): the
// signed id for Standard Webhooks (the same on every retry), a hash of
// "<t>.<body>" for the t=,v1= schemes, a hash of the body for GitHub's. An
// unsigned header (X-GitHub-Delivery, X-Aerofn-Delivery) is only reported to
// the function: a replayer can change it at will, so it never decides
// whether a delivery runs.
//
// Deliveries.Claim takes a lease on the key for one attempt:
//
//	no row, or an unfinished row whose lease has ended  -> Claimed: run it
//	an unfinished row whose lease is live               -> InProgress: 409, Retry-After
//	a finished row                                      -> Done: 200 {"duplicate": true}
//
// Finish(ok) marks the key done; Finish(failed) drops the claim so the
// sender's retry runs. An attempt whose node dies leaves an unfinished row
// whose lease (the function's timeout plus LeaseGrace) runs out, after which
// the retry runs: nothing is lost and a live attempt is never run twice.
// Rows are forgotten after a week.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far a timestamped delivery may be from now.
const Tolerance = 5 * time.Minute

// LeaseGrace is added to a function's timeout to make the lease of one
// attempt: long enough that a live attempt is never run twice, short enough
// that a dead node's delivery is retried soon.
const LeaseGrace = 5 * time.Second

// ErrSignature: the delivery is not signed, or not with the secret.
var ErrSignature = errors.New("invalid webhook signature")

// Delivery is what verification learnt about a delivery.
type Delivery struct {
	// Scheme is "standard", "stripe", "aerofn" or "github".
	Scheme string
	// Key identifies the delivery by what its signature covers (hex).
	Key string
	// ID is the sender's id for the delivery, or "" (signed only for
	// Standard Webhooks).
	ID string
}

// Sign computes the X-Aerofn-Signature (or Stripe-Signature) header value
// for body at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac([]byte(secret), []byte(ts+"."), body))
}

// SignStandard computes the webhook-signature header value of the Standard
// Webhooks scheme.
func SignStandard(secret, id string, t time.Time, body []byte) (string, error) {
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	ts := strconv.FormatInt(t.Unix(), 10)
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, []byte(id+"."+ts+"."), body)), nil
}

func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// key names a delivery by its scheme and signed material.
func key(scheme string, parts ...[]byte) string {
	h := sha256.New()
	h.Write([]byte(scheme))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// standardKey is the HMAC key of a Standard Webhooks secret: base64, with
// an optional "whsec_" prefix.
func standardKey(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("%w: the function's secret is not a Standard Webhooks secret (whsec_ and base64)", ErrSignature)
	}
	return k, nil
}

func checkTime(ts string, now time.Time, header string) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s timestamp %q is not unix seconds", ErrSignature, header, ts)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > Tolerance || age < -Tolerance {
		return fmt.Errorf("%w: %s timestamp is %s away from now (tolerance %s)", ErrSignature, header, age.Round(time.Second), Tolerance)
	}
	return nil
}

// Verify checks a delivery's headers against secret; now is the current
// time. The first signature header present decides.
func Verify(h http.Header, body []byte, secret string, now time.Time) (Delivery, error) {
	if secret == "" {
		return Delivery{}, fmt.Errorf("%w: the function's webhook secret is not set", ErrSignature)
	}
	if sig := h.Get("Webhook-Signature"); sig != "" {
		return verifyStandard(h, sig, body, secret, now)
	}
	for _, s := range []struct{ header, scheme string }{{"Stripe-Signature", "stripe"}, {"X-Aerofn-Signature", "aerofn"}} {
		if sig := h.Get(s.header); sig != "" {
			d, err := verifyTimestamped(s.header, s.scheme, sig, body, secret, now)
			d.ID = senderID(h)
			return d, err
		}
	}
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		got, ok := strings.CutPrefix(sig, "sha256=")
		b, err := hex.DecodeString(got)
		if ok && err == nil && hmac.Equal(b, mac([]byte(secret), body)) {
			return Delivery{Scheme: "github", Key: key("github", body), ID: senderID(h)}, nil
		}
		return Delivery{}, fmt.Errorf("%w: X-Hub-Signature-256 does not match", ErrSignature)
	}
	return Delivery{}, fmt.Errorf("%w: no webhook-signature, Stripe-Signature, X-Aerofn-Signature or X-Hub-Signature-256 header", ErrSignature)
}

// verifyTimestamped checks Stripe's t=,v1= scheme (v0 and other schemes in
// the header are ignored, as Stripe's libraries do).
func verifyTimestamped(header, scheme, sig string, body []byte, secret string, now time.Time) (Delivery, error) {
	var ts string
	var v1 [][]byte
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				v1 = append(v1, b)
			}
		}
	}
	if ts == "" || len(v1) == 0 {
		return Delivery{}, fmt.Errorf("%w: %s must be t=<unix>,v1=<hex>", ErrSignature, header)
	}
	if err := checkTime(ts, now, header); err != nil {
		return Delivery{}, err
	}
	want := mac([]byte(secret), []byte(ts+"."), body)
	for _, got := range v1 {
		if hmac.Equal(got, want) {
			return Delivery{Scheme: scheme, Key: key(scheme, []byte(ts+"."), body)}, nil
		}
	}
	return Delivery{}, fmt.Errorf("%w: %s does not match", ErrSignature, header)
}

func verifyStandard(h http.Header, sig string, body []byte, secret string, now time.Time) (Delivery, error) {
	id, ts := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp")
	if id == "" || ts == "" {
		return Delivery{}, fmt.Errorf("%w: webhook-signature needs webhook-id and webhook-timestamp", ErrSignature)
	}
	if err := checkTime(ts, now, "webhook-timestamp"); err != nil {
		return Delivery{}, err
	}
	k, err := standardKey(secret)
	if err != nil {
		return Delivery{}, err
	}
	want := mac(k, []byte(id+"."+ts+"."), body)
	for _, s := range strings.Fields(sig) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			// The id is signed and stays the same on every retry of a
			// message (the timestamp and signature change): it is the key.
			d := Delivery{Scheme: "standard", Key: key("standard", []byte(id))}
			if len(id) <= 200 && printable(id) {
				d.ID = id
			}
			return d, nil
		}
	}
	return Delivery{}, fmt.Errorf("%w: webhook-signature does not match", ErrSignature)
}

// senderID is the sender's unsigned id for a delivery, if it sent a
// printable one of at most 200 bytes; it is reported to the function (and
// becomes the call's request id) and decides nothing.
func senderID(h http.Header) string {
	for _, k := range []string{"X-Aerofn-Delivery", "X-GitHub-Delivery", "Webhook-Id"} {
		if v := h.Get(k); v != "" && len(v) <= 200 && printable(v) {
			return v
		}
	}
	return ""
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
