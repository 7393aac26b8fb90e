package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aerodb/aerofn/internal/auth"
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

// webhookHiddenHeaders never reach a webhook function: a sender signs its
// deliveries and has no business sending credentials, and whatever a proxy
// or a confused client adds (a service key, a session cookie) must not be
// handed to the function's code.
var webhookHiddenHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "apikey": true, "cookie": true}

// bufferedResponse holds a function's response until the delivery's claim
// is settled. The response is the function's output (bounded by the
// engine's output limit), so holding it costs no more than the call did.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// flush writes the held response to w.
func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		if k == "Vary" { // keep CORS's Vary: Origin
			w.Header()[k] = append(w.Header()[k], v...)
		} else {
			w.Header()[k] = v
		}
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// webhook serves POST /webhooks/v1/{name}: a delivery from an external
// service, verified against the function's signing secret, run as anon (or
// the function's run_as). No JWT: the signature is the credential.
//
// Admission comes first, as for an HTTP call: a node at its concurrency
// limit answers 429 without reading the body or claiming the delivery.
// A delivery runs under a lease (see package webhook): a retry while an
// attempt holds the lease is answered 409 delivery_in_progress with
// Retry-After, so the sender tries again later; once an attempt's response
// was 2xx, every later copy is answered {"duplicate": true}.
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
	// Admission before anything that costs, as for an HTTP call: a delivery
	// this node refuses is answered 429 without reading its body, and is
	// not claimed, so the sender's retry runs.
	adm, err := a.cfg.Invoker.Admit()
	if err != nil {
		w.Header().Set("Connection", "close")
		return a.invokeError(err)
	}
	defer adm.Release()
	body, err := readInvokeBody(w, r)
	if err != nil {
		return err
	}
	secret, _, err := a.cfg.Secrets.Get(r.Context(), trig.Secret)
	if err != nil {
		return fmt.Errorf("reading webhook secret: %w", err)
	}
	d, err := webhook.Verify(r.Header, body, secret, time.Now())
	if err != nil {
		return apiError(http.StatusUnauthorized, "invalid_signature", "%v", err)
	}
	evBody, evEncoding, err := eventBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	delivery := d.ID
	if delivery == "" {
		delivery = uuid.NewString()
	}
	ev := webhookEvent{Trigger: "webhook", Headers: map[string]string{}, Timestamp: time.Now().UTC().Format(time.RFC3339Nano), DeliveryID: delivery}
	for k := range r.Header {
		if lk := strings.ToLower(k); !webhookHiddenHeaders[lk] {
			ev.Headers[lk] = r.Header.Get(k)
		}
	}
	ev.Body, ev.BodyEncoding = evBody, evEncoding
	// Encoded as an HTTP call's event is (no HTML escaping, the limit on
	// the encoded size), and before the claim: a delivery that can never
	// run is refused without one.
	evJSON, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	claim, err := a.cfg.Deliveries.Claim(r.Context(), fn.ID, d.Key, fn.Config.TimeoutDuration()+webhook.LeaseGrace)
	if err != nil {
		return err
	}
	switch claim.State {
	case webhook.Done:
		writeJSON(w, http.StatusOK, map[string]any{"duplicate": true, "delivery_id": d.ID})
		return nil
	case webhook.InProgress:
		secs := int((claim.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		return apiError(http.StatusConflict, "delivery_in_progress", "this delivery is being run by another attempt; retry after %d s", max(secs, 1))
	}
	res, httpStatus := answer()
	out, err := adm.Invoke(r.Context(), fn, invoker.Call{Trigger: "webhook", Event: evJSON, Principal: auth.Anon(), RequestID: delivery,
		CheckOutput: checkResult, HTTPStatus: httpStatus})
	if err != nil {
		a.finishDelivery(r.Context(), fn.Name, fn.ID, d.Key, claim.Attempt, false)
		return a.invokeError(err)
	}
	// Only a delivery answered 2xx counts as done (the sender retries
	// anything else, and that retry must run). The claim is settled before
	// the sender sees the answer, so a retry of a 2xx the sender never
	// received (a dropped connection, a slow reader) finds it done.
	buf := &bufferedResponse{header: http.Header{}}
	if err := a.respond(buf, fn, out, *res, delivery); err != nil {
		a.finishDelivery(r.Context(), fn.Name, fn.ID, d.Key, claim.Attempt, false)
		return err
	}
	a.finishDelivery(r.Context(), fn.Name, fn.ID, d.Key, claim.Attempt, buf.status == 0 || buf.status/100 == 2)
	buf.flush(w)
	return nil
}

func (a *API) finishDelivery(ctx context.Context, name, functionID, key, attempt string, ok bool) {
	if err := a.cfg.Deliveries.Finish(context.WithoutCancel(ctx), functionID, key, attempt, ok); err != nil {
		// The claim's lease runs out by itself: a retry then runs.
		a.log.Error("settling webhook delivery", "function", name, "key", key, "done", ok, "error", err)
	}
}
