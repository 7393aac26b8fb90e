package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/webhook"
)

type webhookEvent struct {
	Trigger      string            `json:"trigger"`
	Headers      map[string]string `json:"headers"`
	Body         json.RawMessage   `json:"body"`
	BodyEncoding string            `json:"body_encoding,omitempty"`
	Timestamp    string            `json:"timestamp"`
	DeliveryID   string            `json:"delivery_id"`
}

// webhook serves POST /webhooks/v1/{name}: a delivery from an external
// service, verified against the function's signing secret, run as anon (or
// the function's run_as). No JWT: the signature is the credential.
func (a *API) webhook(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	fn, err := a.cfg.Invoker.Lookup(r.Context(), name)
	if errors.Is(err, invoker.ErrNotFound) {
		return notFound("function %q does not exist or is disabled", name)
	}
	if err != nil {
		return err
	}
	trig, ok := webhook.Trigger(fn)
	if !ok {
		return notFound("function %q has no webhook trigger", name)
	}
	body, err := readInvokeBody(w, r)
	if err != nil {
		return err
	}
	secret, _, err := a.cfg.Secrets.Get(r.Context(), trig.Secret)
	if err != nil {
		return fmt.Errorf("reading webhook secret: %w", err)
	}
	if err := webhook.Verify(r.Header, body, secret, time.Now()); err != nil {
		return apiError(http.StatusUnauthorized, "invalid_signature", "%v", err)
	}
	delivery := webhook.DeliveryID(r.Header)
	remembered := delivery != ""
	if remembered {
		first, err := a.cfg.Deliveries.First(r.Context(), fn.ID, delivery)
		if err != nil {
			return err
		}
		if !first {
			// Done already, or running right now on some node.
			writeJSON(w, http.StatusOK, map[string]any{"duplicate": true, "delivery_id": delivery})
			return nil
		}
	} else {
		delivery = uuid.NewString()
	}
	ev := webhookEvent{Trigger: "webhook", Headers: map[string]string{}, Timestamp: time.Now().UTC().Format(time.RFC3339Nano), DeliveryID: delivery}
	for k := range r.Header {
		ev.Headers[strings.ToLower(k)] = r.Header.Get(k)
	}
	ev.Body, ev.BodyEncoding = eventBody(r.Header.Get("Content-Type"), body)
	evJSON, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	out, err := a.cfg.Invoker.Invoke(r.Context(), fn, invoker.Call{Trigger: "webhook", Event: evJSON, Principal: auth.Anon(), RequestID: delivery})
	if remembered && (err != nil || out.Status != engine.StatusSuccess) {
		// Only a delivery that succeeded counts as done; the sender's retry
		// of a failed one must run.
		if ferr := a.cfg.Deliveries.Forget(context.WithoutCancel(r.Context()), fn.ID, delivery); ferr != nil {
			a.log.Error("forgetting failed webhook delivery", "function", fn.Name, "delivery", delivery, "error", ferr)
		}
	}
	if err != nil {
		return a.invokeError(err)
	}
	return a.respond(w, fn, out, delivery)
}
