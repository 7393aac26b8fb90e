package dbtrigger

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"github.com/aerodb/aerofn/internal/auth"
)

// Writer is who made a change, when known: the verified identity of a write
// through db_query, or the JWT claims an application session carried.
type Writer struct {
	Role   string         `json:"role,omitempty"`
	Sub    string         `json:"sub,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
	Source string         `json:"source,omitempty"` // db_query or session
}

// Change is one captured row change, as the capture trigger recorded it.
type Change struct {
	EventID    int64           `json:"event_id"`
	TableOID   uint32          `json:"table_oid"`
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Op         string          `json:"operation"`
	Old        json.RawMessage `json:"old,omitempty"`
	New        json.RawMessage `json:"new,omitempty"`
	Writer     *Writer         `json:"writer,omitempty"`
	TxID       uint64          `json:"txid"`
	CapturedAt time.Time       `json:"captured_at"`
}

// Principal is who a delivery acts for before run_as: the writer when
// known, else anon.
func (c Change) Principal() auth.Principal {
	if c.Writer == nil || !auth.Role(c.Writer.Role).Valid() {
		return auth.Anon()
	}
	return auth.Principal{Role: auth.Role(c.Writer.Role), UserID: c.Writer.Sub, Claims: c.Writer.Claims}
}

// Event is the JSON handed to the function's handler (README.md, "Events"),
// with the delivery attempt (1 on the first try) so a function can tell a
// retry, and who wrote the row.
type Event struct {
	Trigger   string          `json:"trigger"`
	Schema    string          `json:"schema"`
	Table     string          `json:"table"`
	Operation string          `json:"operation"`
	Old       json.RawMessage `json:"old"`
	New       json.RawMessage `json:"new"`
	EventID   string          `json:"event_id"`
	Timestamp string          `json:"timestamp"`
	Attempt   int             `json:"attempt"`
	TxID      string          `json:"txid"`
	UserID    string          `json:"user_id,omitempty"`
	Role      string          `json:"role,omitempty"`
}

// EventJSON builds the handler's event for one attempt.
func (c Change) EventJSON(attempt int) ([]byte, error) {
	ev := Event{Trigger: TriggerType, Schema: c.Schema, Table: c.Table, Operation: c.Op, Old: c.Old, New: c.New,
		EventID: strconv.FormatInt(c.EventID, 10), Timestamp: c.CapturedAt.UTC().Format(time.RFC3339Nano), Attempt: attempt,
		TxID: strconv.FormatUint(c.TxID, 10)}
	if ev.Old == nil {
		ev.Old = json.RawMessage("null")
	}
	if ev.New == nil {
		ev.New = json.RawMessage("null")
	}
	if c.Writer != nil {
		ev.UserID, ev.Role = c.Writer.Sub, c.Writer.Role
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding event %d: %w", c.EventID, err)
	}
	return b, nil
}

// JobKind is the River job kind of a delivery; QueueName its queue, which no
// other job kind shares (so another River client on the same schema never
// fetches a delivery it has no worker for).
const (
	JobKind   = "aerofn_db_event"
	QueueName = "aerofn_db_events"
)

// deliveryArgs is one delivery: one change to one function. The change
// travels in the job, so a worker reads nothing else to run it.
type deliveryArgs struct {
	FunctionID string `json:"function_id"`
	Function   string `json:"function"`
	EventID    int64  `json:"event_id"`
	// Seq is the backlog row of an ordered delivery (0: not ordered).
	Seq    int64  `json:"seq,omitempty"`
	Change Change `json:"change"`
}

// Kind implements river.JobArgs.
func (deliveryArgs) Kind() string { return JobKind }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (deliveryArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueName} }
