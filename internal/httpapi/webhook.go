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
	"github.com/aerodb/aerofn/internal/registry"
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
	var (
		d        webhook.Delivery
		delivery string // d.ID, or a new id when the sender gave none
		claimed  *webhook.Claim
		fnID     string
	)
	res, httpStatus := answer()
	out, err := a.cfg.Invoker.Invoke(r.Context(), name, invoker.Call{Trigger: "webhook", Principal: auth.Anon(),
		Check: func(fn registry.Function) error {
			if _, ok := webhook.Trigger(fn); !ok {
				return notFound("function %q has no webhook trigger", name)
			}
			return nil
		},
		// Built once admitted: a delivery this node refuses is answered 429
		// without reading its body, and is not claimed, so the sender's
		// retry runs.
		BuildEvent: func(fn registry.Function, _ auth.Principal) ([]byte, string, error) {
			var ev []byte
			var claim webhook.Claim
			var err error
			ev, d, delivery, claim, err = a.webhookEvent(w, r, fn)
			if err != nil {
				return nil, "", err
			}
			switch claim.State {
			case webhook.Done:
				return nil, "", errDuplicate
			case webhook.InProgress:
				secs := max(int((claim.RetryAfter+time.Second-1)/time.Second), 1)
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				return nil, "", apiError(http.StatusConflict, "delivery_in_progress", "this delivery is being run by another attempt; retry after %d s", secs)
			}
			claimed, fnID = &claim, fn.ID
			return ev, delivery, nil
		},
		CheckOutput: checkResult, HTTPStatus: httpStatus})
	if errors.Is(err, errDuplicate) {
		writeJSON(w, http.StatusOK, map[string]any{"duplicate": true, "delivery_id": d.ID})
		return nil
	}
	if errors.Is(err, invoker.ErrBusy) && claimed == nil {
		w.Header().Set("Connection", "close")
	}
	if err != nil {
		if claimed != nil {
			a.finishDelivery(r.Context(), name, fnID, d.Key, claimed.Attempt, false)
		}
		return invokeError(name, err)
	}
	// Only a delivery answered 2xx counts as done (the sender retries
	// anything else, and that retry must run). The claim is settled before
	// the sender sees the answer, so a retry of a 2xx the sender never
	// received (a dropped connection, a slow reader) finds it done.
	buf := &bufferedResponse{header: http.Header{}}
	if err := a.respond(buf, out, *res, delivery); err != nil {
		a.finishDelivery(r.Context(), name, fnID, d.Key, claimed.Attempt, false)
		return err
	}
	a.finishDelivery(r.Context(), name, fnID, d.Key, claimed.Attempt, buf.status == 0 || buf.status/100 == 2)
	buf.flush(w)
	return nil
}

// errDuplicate: the delivery was done already; answered 200 {"duplicate": true}.
var errDuplicate = errors.New("webhook delivery done already")

// webhookEvent reads and verifies a delivery, builds its event and claims
// it. The event is encoded as an HTTP call's is (no HTML escaping, the
// limit on the encoded size), and before the claim: a delivery that can
// never run is refused without one.
func (a *API) webhookEvent(w http.ResponseWriter, r *http.Request, fn registry.Function) (
	ev []byte, d webhook.Delivery, delivery string, claim webhook.Claim, err error) {
	trig, _ := webhook.Trigger(fn)
	body, err := readInvokeBody(w, r)
	if err != nil {
		return nil, d, "", claim, err
	}
	secret, _, err := a.cfg.Secrets.Get(r.Context(), trig.Secret)
	if err != nil {
		return nil, d, "", claim, fmt.Errorf("reading webhook secret: %w", err)
	}
	d, err = webhook.Verify(r.Header, body, secret, time.Now())
	if err != nil {
		return nil, d, "", claim, apiError(http.StatusUnauthorized, "invalid_signature", "%v", err)
	}
	evBody, evEncoding, err := eventBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, d, "", claim, err
	}
	delivery = d.ID
	if delivery == "" {
		delivery = uuid.NewString()
	}
	e := webhookEvent{Trigger: "webhook", Headers: map[string]string{}, Timestamp: time.Now().UTC().Format(time.RFC3339Nano), DeliveryID: delivery}
	for k := range r.Header {
		if lk := strings.ToLower(k); !webhookHiddenHeaders[lk] {
			e.Headers[lk] = r.Header.Get(k)
		}
	}
	e.Body, e.BodyEncoding = evBody, evEncoding
	if ev, err = encodeEvent(e); err != nil {
		return nil, d, "", claim, err
	}
	claim, err = a.cfg.Deliveries.Claim(r.Context(), fn.ID, d.Key, fn.Config.TimeoutDuration()+webhook.LeaseGrace)
	return ev, d, delivery, claim, err
}

func (a *API) finishDelivery(ctx context.Context, name, functionID, key, attempt string, ok bool) {
	if err := a.cfg.Deliveries.Finish(context.WithoutCancel(ctx), functionID, key, attempt, ok); err != nil {
		// The claim's lease runs out by itself: a retry then runs.
		a.log.Error("settling webhook delivery", "function", name, "key", key, "done", ok, "error", err)
	}
}
