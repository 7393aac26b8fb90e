// Package webhook verifies signed deliveries from external services before a
// function sees them. Two schemes are accepted, both HMAC-SHA256 over the raw
// body with a secret stored in aerofn's secrets:
//
//	X-Aerofn-Signature: t=<unix seconds>,v1=<hex hmac(secret, "<t>.<body>")>
//	    (Stripe's scheme: the timestamp is signed too, and deliveries older
//	    than the tolerance are refused, so a captured request cannot be
//	    replayed later)
//	X-Hub-Signature-256: sha256=<hex hmac(secret, body)>
//	    (GitHub's scheme; replays are caught by the delivery id instead)
//
// Comparisons are constant-time. Within the tolerance, a delivery id seen
// before is answered without running the function again.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/registry"
)

// Tolerance is how old a timestamped delivery may be.
const Tolerance = 5 * time.Minute

// ErrSignature: the delivery is not signed, or not with the secret.
var ErrSignature = errors.New("invalid webhook signature")

// Sign computes the X-Aerofn-Signature header value for body at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, []byte(ts+"."), body)
}

func mac(secret string, parts ...[]byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, p := range parts {
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's headers against secret; now is the current time.
func Verify(h http.Header, body []byte, secret string, now time.Time) error {
	if secret == "" {
		return fmt.Errorf("%w: the function's webhook secret is not set", ErrSignature)
	}
	if sig := h.Get("X-Aerofn-Signature"); sig != "" {
		var ts string
		var v1 []string
		for _, part := range strings.Split(sig, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "t":
				ts = v
			case "v1":
				v1 = append(v1, v)
			}
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || len(v1) == 0 {
			return fmt.Errorf("%w: X-Aerofn-Signature must be t=<unix>,v1=<hex>", ErrSignature)
		}
		if age := now.Sub(time.Unix(sec, 0)); age > Tolerance || age < -Tolerance {
			return fmt.Errorf("%w: timestamp is %s away from now (tolerance %s)", ErrSignature, age.Round(time.Second), Tolerance)
		}
		want := mac(secret, []byte(ts+"."), body)
		for _, got := range v1 {
			if hmac.Equal([]byte(got), []byte(want)) {
				return nil
			}
		}
		return fmt.Errorf("%w: signature does not match", ErrSignature)
	}
	if sig := h.Get("X-Hub-Signature-256"); sig != "" {
		got, ok := strings.CutPrefix(sig, "sha256=")
		if ok && hmac.Equal([]byte(got), []byte(mac(secret, body))) {
			return nil
		}
		return fmt.Errorf("%w: X-Hub-Signature-256 does not match", ErrSignature)
	}
	return fmt.Errorf("%w: no X-Aerofn-Signature or X-Hub-Signature-256 header", ErrSignature)
}

// DeliveryID is the sender's id for a delivery, if it sent one.
func DeliveryID(h http.Header) string {
	for _, k := range []string{"X-Aerofn-Delivery", "X-GitHub-Delivery", "Webhook-Id", "Stripe-Delivery"} {
		if v := h.Get(k); v != "" && len(v) <= 200 {
			return v
		}
	}
	return ""
}

// Deliveries remembers delivery ids so a replayed delivery runs once.
type Deliveries struct{ pool *pgxpool.Pool }

// NewDeliveries returns a store.
func NewDeliveries(pool *pgxpool.Pool) *Deliveries { return &Deliveries{pool: pool} }

// First records id for a function and reports whether it is new. Ids older
// than a week are forgotten.
func (d *Deliveries) First(ctx context.Context, functionID, id string) (bool, error) {
	tag, err := d.pool.Exec(ctx, `WITH gone AS (DELETE FROM aerofn.webhook_deliveries WHERE received_at < now() - interval '7 days')
		INSERT INTO aerofn.webhook_deliveries (function_id, delivery_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, functionID, id)
	if err != nil {
		return false, fmt.Errorf("recording webhook delivery: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Forget drops a delivery id whose run failed, so the sender's retry runs.
func (d *Deliveries) Forget(ctx context.Context, functionID, id string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM aerofn.webhook_deliveries WHERE function_id = $1 AND delivery_id = $2`, functionID, id); err != nil {
		return fmt.Errorf("forgetting webhook delivery: %w", err)
	}
	return nil
}

// Trigger returns fn's webhook trigger, if it has one.
func Trigger(fn registry.Function) (registry.Trigger, bool) {
	ts := fn.Config.TriggersOf("webhook")
	if len(ts) == 0 {
		return registry.Trigger{}, false
	}
	return ts[0], true
}

// Validate checks a webhook trigger's config.
func Validate(t registry.Trigger, i int) error {
	if t.Secret == "" {
		return &registry.ValidationError{Field: fmt.Sprintf("config.triggers[%d].secret", i), Message: "name the secret that signs deliveries (set it with aerofn secrets set)"}
	}
	return nil
}
