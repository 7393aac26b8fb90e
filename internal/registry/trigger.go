package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
)

// Trigger is one way besides HTTP that a function is run: its type and,
// for the types aerofn knows, the fields of that type in a struct of its
// own (exactly one of Database, Schedule, Webhook is set, matching Type).
// In JSON it is one flat object, {"type": "schedule", "cron": "..."}.
//
// ParseConfig and ParseTriggers read a trigger strictly: a field of
// another type (cron on a database trigger) is refused naming the type it
// belongs to, a field no type has is refused as unknown. Decoding a
// stored config (json.Unmarshal) is lenient and keeps only the type's own
// fields. The package that owns a type validates the values
// (Store.AddTriggerType, Hook.Validate).
type Trigger struct {
	Type     string
	Database *DatabaseTrigger
	Schedule *ScheduleTrigger
	Webhook  *WebhookTrigger
}

// DatabaseTrigger runs a function on changes of a table (package dbtrigger).
type DatabaseTrigger struct {
	Table   string   `json:"table,omitempty"`
	Events  []string `json:"events,omitempty"`
	Ordered bool     `json:"ordered,omitempty"`
	// MaxAttempts: how many times a delivery is tried (0: the default).
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// ScheduleTrigger runs a function on a cron schedule (package scheduler).
type ScheduleTrigger struct {
	Cron     string `json:"cron,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	CatchUp  string `json:"catch_up,omitempty"`
	Overlap  string `json:"overlap,omitempty"`
}

// WebhookTrigger runs a function on signed webhook deliveries (package webhook).
type WebhookTrigger struct {
	// Secret names the secret that signs deliveries.
	Secret string `json:"secret,omitempty"`
}

// The trigger types with fields; "http" has none.
const (
	TriggerDatabase = "database"
	TriggerSchedule = "schedule"
	TriggerWebhook  = "webhook"
	TriggerHTTP     = "http"
)

// variant returns a pointer to the struct of t's type (nil for a type
// without fields), allocating it if need be.
func (t *Trigger) variant() any {
	switch t.Type {
	case TriggerDatabase:
		if t.Database == nil {
			t.Database = &DatabaseTrigger{}
		}
		return t.Database
	case TriggerSchedule:
		if t.Schedule == nil {
			t.Schedule = &ScheduleTrigger{}
		}
		return t.Schedule
	case TriggerWebhook:
		if t.Webhook == nil {
			t.Webhook = &WebhookTrigger{}
		}
		return t.Webhook
	}
	return nil
}

// triggerFields lists each type's JSON fields, from the structs' tags.
var triggerFields = map[string][]string{
	TriggerDatabase: jsonFields(DatabaseTrigger{}),
	TriggerSchedule: jsonFields(ScheduleTrigger{}),
	TriggerWebhook:  jsonFields(WebhookTrigger{}),
	TriggerHTTP:     nil,
}

func jsonFields(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// foreignNotes explains, for some fields refused on a type, why that type
// has no such field.
var foreignNotes = map[[2]string]string{
	{TriggerSchedule, "max_attempts"}: "schedule runs are never retried: a tick runs at most once, so that a crash cannot run it twice",
}

// MarshalJSON writes the flat form: "type" and the type's own fields.
func (t Trigger) MarshalJSON() ([]byte, error) {
	head, err := json.Marshal(struct {
		Type string `json:"type"`
	}{t.Type})
	if err != nil {
		return nil, err
	}
	v := t.variant()
	if v == nil {
		return head, nil
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(body) == "{}" {
		return head, nil
	}
	return append(append(head[:len(head)-1], ','), body[1:]...), nil
}

// UnmarshalJSON reads the flat form leniently (a stored config): fields
// of other types are dropped. Deploys go through parseTrigger.
func (t *Trigger) UnmarshalJSON(b []byte) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	*t = Trigger{Type: head.Type}
	if v := t.variant(); v != nil {
		return json.Unmarshal(b, v)
	}
	return nil
}

// parseTrigger reads one trigger strictly; errors name path.field.
func parseTrigger(raw []byte, path string) (Trigger, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Trigger{}, invalid(path, "a trigger is a JSON object with a type, e.g. {\"type\": \"schedule\", \"cron\": \"@daily\"}")
	}
	var t Trigger
	if r, ok := fields["type"]; ok {
		if err := json.Unmarshal(r, &t.Type); err != nil {
			return Trigger{}, invalid(path+".type", "must be a string")
		}
	}
	own, known := triggerFields[t.Type]
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "type" || slices.Contains(own, name) {
			continue
		}
		var owners []string
		for _, typ := range []string{TriggerDatabase, TriggerSchedule, TriggerWebhook} {
			if slices.Contains(triggerFields[typ], name) {
				owners = append(owners, typ)
			}
		}
		switch {
		case len(owners) == 0:
			return Trigger{}, invalid(path+"."+name, "unknown field %q (no trigger type has it)", name)
		case !known:
			// An unknown type is refused by Validate, naming the type.
			continue
		case foreignNotes[[2]string{t.Type, name}] != "":
			return Trigger{}, invalid(path+"."+name, "%s", foreignNotes[[2]string{t.Type, name}])
		default:
			return Trigger{}, invalid(path+"."+name, "is a field of %s triggers, not of %s triggers", strings.Join(owners, " and "), t.Type)
		}
	}
	if v := t.variant(); v != nil {
		// Only the type's own fields are left; decode them into its struct.
		delete(fields, "type")
		b, err := json.Marshal(fields)
		if err != nil {
			return Trigger{}, invalid(path, "%v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return Trigger{}, invalid(path+"."+te.Field, "must be of JSON type %s, not %s", jsonType(te.Type), te.Value)
			}
			return Trigger{}, invalid(path, "%v", err)
		}
	}
	return t, nil
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "number (an integer)"
	case reflect.Slice:
		return "array"
	}
	return t.String()
}
