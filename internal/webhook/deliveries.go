package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/registry"
)

// State is what Claim found.
type State int

const (
	// Claimed: this attempt holds the lease and runs the delivery.
	Claimed State = iota
	// InProgress: another attempt holds a live lease.
	InProgress
	// Done: an attempt succeeded already.
	Done
)

// Claim is the result of Deliveries.Claim.
type Claim struct {
	State State
	// Attempt identifies this attempt's lease (Claimed only).
	Attempt string
	// RetryAfter is how long the live lease still runs (InProgress only).
	RetryAfter time.Duration
}

// Deliveries remembers deliveries so that each runs once (see the package
// documentation for the states).
type Deliveries struct{ pool *pgxpool.Pool }

// NewDeliveries returns a store.
func NewDeliveries(pool *pgxpool.Pool) *Deliveries { return &Deliveries{pool: pool} }

// Retention is how long a delivery is remembered.
const Retention = 7 * 24 * time.Hour

// Claim takes a lease of length lease on a function's delivery key, unless
// the delivery is done or another attempt's lease is live.
func (d *Deliveries) Claim(ctx context.Context, functionID, key string, lease time.Duration) (Claim, error) {
	// Two statements, so a row that vanishes between them (its attempt
	// failed and dropped it) is claimed on the next round.
	for range 3 {
		attempt := uuid.NewString()
		var got string
		err := d.pool.QueryRow(ctx, `WITH gone AS (
				DELETE FROM aerofn.webhook_deliveries WHERE received_at < now() - make_interval(secs => $4) AND (done OR lease_until < now()))
			INSERT INTO aerofn.webhook_deliveries AS d (function_id, delivery_id, done, lease_until, attempt)
			VALUES ($1, $2, false, now() + make_interval(secs => $3), $5)
			ON CONFLICT (function_id, delivery_id) DO UPDATE
				SET received_at = now(), lease_until = excluded.lease_until, attempt = excluded.attempt
				WHERE NOT d.done AND d.lease_until < now()
			RETURNING d.attempt::text`, functionID, key, lease.Seconds(), Retention.Seconds(), attempt).Scan(&got)
		if err == nil {
			return Claim{State: Claimed, Attempt: got}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Claim{}, fmt.Errorf("claiming webhook delivery: %w", err)
		}
		var done bool
		var left float64
		err = d.pool.QueryRow(ctx, `SELECT done, coalesce(extract(epoch FROM lease_until - now()), 0)::float8
			FROM aerofn.webhook_deliveries WHERE function_id = $1 AND delivery_id = $2`, functionID, key).Scan(&done, &left)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue
		case err != nil:
			return Claim{}, fmt.Errorf("reading webhook delivery: %w", err)
		case done:
			return Claim{State: Done}, nil
		default:
			return Claim{State: InProgress, RetryAfter: time.Duration(left * float64(time.Second))}, nil
		}
	}
	return Claim{}, errors.New("claiming webhook delivery: the claim kept changing hands")
}

// Finish settles an attempt: ok marks the delivery done (whoever holds the
// lease now, since it has run); otherwise this attempt's claim is dropped so
// that the sender's retry runs, unless another attempt took it over after
// this one's lease ran out.
func (d *Deliveries) Finish(ctx context.Context, functionID, key, attempt string, ok bool) error {
	var err error
	if ok {
		_, err = d.pool.Exec(ctx, `UPDATE aerofn.webhook_deliveries SET done = true, lease_until = NULL
			WHERE function_id = $1 AND delivery_id = $2`, functionID, key)
	} else {
		_, err = d.pool.Exec(ctx, `DELETE FROM aerofn.webhook_deliveries
			WHERE function_id = $1 AND delivery_id = $2 AND attempt = $3 AND NOT done`, functionID, key, attempt)
	}
	if err != nil {
		return fmt.Errorf("settling webhook delivery: %w", err)
	}
	return nil
}

// Trigger returns fn's webhook trigger, if it has one.
func Trigger(fn registry.Function) (registry.WebhookTrigger, bool) {
	ts := fn.Config.TriggersOf(registry.TriggerWebhook)
	if len(ts) == 0 || ts[0].Webhook == nil {
		return registry.WebhookTrigger{}, false
	}
	return *ts[0].Webhook, true
}

// Validate checks a webhook trigger's config.
func Validate(t registry.Trigger, i int) error {
	if t.Webhook == nil || t.Webhook.Secret == "" {
		return &registry.ValidationError{Field: fmt.Sprintf("config.triggers[%d].secret", i), Message: "name the secret that signs deliveries (set it with aerofn secrets set)"}
	}
	return nil
}
