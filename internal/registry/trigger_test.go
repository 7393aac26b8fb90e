package registry

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseTriggerStrict: each trigger type has its own fields only; a
// field of another type is refused naming the type it belongs to, a field
// no type has as unknown, a value of the wrong JSON type naming the field.
func TestParseTriggerStrict(t *testing.T) {
	for _, c := range []struct {
		doc, field, says string
	}{
		{`{"triggers":[{"type":"schedule","cron":"@daily","table":"users"}]}`, "config.triggers[0].table", "field of database triggers, not of schedule"},
		{`{"triggers":[{"type":"http"},{"type":"schedule","cron":"@daily","max_attempts":3}]}`, "config.triggers[1].max_attempts", "never retried"},
		{`{"triggers":[{"type":"database","table":"t","cron":"* * * * *"}]}`, "config.triggers[0].cron", "field of schedule triggers"},
		{`{"triggers":[{"type":"webhook","secret":"S","events":["INSERT"]}]}`, "config.triggers[0].events", "field of database triggers"},
		{`{"triggers":[{"type":"http","cron":"@daily"}]}`, "config.triggers[0].cron", "not of http triggers"},
		{`{"triggers":[{"type":"schedule","timezon":"UTC"}]}`, "config.triggers[0].timezon", "unknown field"},
		{`{"triggers":[{"type":"database","table":5}]}`, "config.triggers[0].table", "string"},
		{`{"triggers":[{"type":3}]}`, "config.triggers[0].type", "string"},
		{`{"triggers":["schedule"]}`, "config.triggers[0]", "JSON object with a type"},
		{`{"triggers":{"type":"schedule"}}`, "config", "not a valid config document"},
	} {
		_, err := ParseConfig([]byte(c.doc))
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !strings.Contains(ve.Message, c.says) {
			t.Errorf("%s: got %v, want %s saying %q", c.doc, err, c.field, c.says)
		}
	}
	ts, err := ParseTriggers([]byte(`[{"type":"schedule","cron":"@daily"},{"type":"webhook","max_attempts":2}]`))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "trigger[1].max_attempts" {
		t.Errorf("form field: %v %v", ts, err)
	}
	// An unknown type keeps only its type; Validate refuses it by name.
	c, err := ParseConfig([]byte(`{"triggers":[{"type":"carrier-pigeon","cron":"@daily"}]}`))
	if err != nil || c.Triggers[0].Type != "carrier-pigeon" {
		t.Fatalf("%+v %v", c, err)
	}
	if err := c.Validate(nil); !errors.As(err, &ve) || ve.Field != "config.triggers[0].type" {
		t.Fatalf("validate: %v", err)
	}
}

// TestTriggerJSONShape: each type is decoded into its own struct, and
// written back in the flat form clients send and read.
func TestTriggerJSONShape(t *testing.T) {
	doc := `{"triggers":[{"type":"http"},{"type":"database","table":"public.orders","events":["INSERT"],"ordered":true,"max_attempts":3},` +
		`{"type":"schedule","cron":"@daily","timezone":"Europe/Paris","catch_up":"skip","overlap":"queue"},{"type":"webhook","secret":"STRIPE"}]}`
	c, err := ParseConfig([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []Trigger{
		{Type: "http"},
		{Type: "database", Database: &DatabaseTrigger{Table: "public.orders", Events: []string{"INSERT"}, Ordered: true, MaxAttempts: 3}},
		{Type: "schedule", Schedule: &ScheduleTrigger{Cron: "@daily", Timezone: "Europe/Paris", CatchUp: "skip", Overlap: "queue"}},
		{Type: "webhook", Webhook: &WebhookTrigger{Secret: "STRIPE"}},
	}
	if !reflect.DeepEqual(c.Triggers, want) {
		t.Fatalf("parsed %+v", c.Triggers)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != doc {
		t.Fatalf("written back as\n%s\nnot\n%s", out, doc)
	}
	// A stored config reads back the same (leniently: json.Unmarshal).
	var back Config
	if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back.Triggers, want) {
		t.Fatalf("read back %+v %v", back.Triggers, err)
	}
	// A type with no fields set is just its type.
	if b, _ := json.Marshal(Trigger{Type: "schedule"}); string(b) != `{"type":"schedule"}` {
		t.Fatalf("empty schedule: %s", b)
	}
}
