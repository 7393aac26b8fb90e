//go:build cgo

package examples

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// fakeHost answers the aerodb imports for one call with canned replies and
// records what the guest asked for. It stands in for internal/engine, so
// these tests check the SDK's wasm side and each example's behaviour without
// a server or a database.
type fakeHost struct {
	env        map[string]string
	dbReply    string
	fetchReply string

	dbRequests    []string
	fetchRequests []string
	logs          []string
	output        string
}

type callResult struct {
	code   int32
	output string
}

// compiled caches each example's compiled module: compiling a Go module
// takes seconds, instantiating it a millisecond, as in the real host.
var compiled struct {
	sync.Mutex
	engine  *wasmtime.Engine
	modules map[string]*wasmtime.Module
}

func compileExample(t *testing.T, name string) (*wasmtime.Engine, *wasmtime.Module) {
	t.Helper()
	bin := buildExample(t, name)
	compiled.Lock()
	defer compiled.Unlock()
	if compiled.engine == nil {
		// Optimising buys nothing for a handful of calls and costs most
		// of the compile time.
		cfg := wasmtime.NewConfig()
		cfg.SetCraneliftOptLevel(wasmtime.OptLevelNone)
		compiled.engine = wasmtime.NewEngineWithConfig(cfg)
		compiled.modules = map[string]*wasmtime.Module{}
	}
	if m := compiled.modules[name]; m != nil {
		return compiled.engine, m
	}
	m, err := wasmtime.NewModule(compiled.engine, bin)
	if err != nil {
		t.Fatalf("compiling %s: %v", name, err)
	}
	compiled.modules[name] = m
	return compiled.engine, m
}

// run instantiates the example fresh, as the host does for every call, runs
// _initialize and handler, and returns handler's result and the output.
func (h *fakeHost) run(t *testing.T, example, event string) callResult {
	t.Helper()
	engine, module := compileExample(t, example)
	store := wasmtime.NewStore(engine)
	store.SetWasi(wasmtime.NewWasiConfig())
	linker := wasmtime.NewLinker(engine)
	if err := linker.DefineWasi(); err != nil {
		t.Fatal(err)
	}
	var pending []byte
	mem := func(c *wasmtime.Caller, ptr, n int32) []byte {
		return c.GetExport("memory").Memory().UnsafeData(c)[ptr : ptr+n]
	}
	reply := func(b string) int32 {
		pending = []byte(b)
		return int32(len(pending))
	}
	define := func(name string, f any) {
		if err := linker.FuncWrap("aerodb", name, f); err != nil {
			t.Fatalf("defining %s: %v", name, err)
		}
	}
	define("input_len", func() int32 { return int32(len(event)) })
	define("input_read", func(c *wasmtime.Caller, p, n int32) int32 { return int32(copy(mem(c, p, n), event)) })
	define("output", func(c *wasmtime.Caller, p, n int32) int32 {
		h.output = string(mem(c, p, n))
		return 0
	})
	define("log", func(c *wasmtime.Caller, level, p, n int32) {
		h.logs = append(h.logs, string(mem(c, p, n)))
	})
	define("env", func(c *wasmtime.Caller, p, n int32) int32 {
		v, ok := h.env[string(mem(c, p, n))]
		if !ok {
			return -1
		}
		return reply(v)
	})
	define("db_query", func(c *wasmtime.Caller, p, n int32) int32 {
		h.dbRequests = append(h.dbRequests, string(mem(c, p, n)))
		return reply(h.dbReply)
	})
	define("http_fetch", func(c *wasmtime.Caller, p, n int32) int32 {
		h.fetchRequests = append(h.fetchRequests, string(mem(c, p, n)))
		return reply(h.fetchReply)
	})
	define("reply_read", func(c *wasmtime.Caller, p, n int32) int32 { return int32(copy(mem(c, p, n), pending)) })

	inst, err := linker.Instantiate(store, module)
	if err != nil {
		t.Fatalf("instantiating: %v", err)
	}
	if _, err := inst.GetFunc(store, "_initialize").Call(store); err != nil {
		t.Fatalf("_initialize: %v", err)
	}
	code, err := inst.GetFunc(store, "handler").Call(store)
	if err != nil {
		t.Fatalf("handler trapped: %v", err)
	}
	return callResult{code: code.(int32), output: h.output}
}

func TestExamplesRun(t *testing.T) {
	const order = `{"trigger":"database","table":"orders","operation":"INSERT","old":null,"new":{"id":1,"product_id":3,"quantity":2},"event_id":"e-1"}`
	tests := []struct {
		name    string
		example string
		event   string
		host    fakeHost
		want    callResult
		wantDB  []string // requests, in order
		wantLog string   // a substring of some log line
		check   func(t *testing.T, h *fakeHost)
	}{
		{
			name: "hello", example: "hello",
			event: `{"trigger":"http","method":"POST","headers":{"content-type":"application/json"},"body":{"name":"World"}}`,
			want:  callResult{0, `{"message":"Hello, World!"}`},
		},
		{
			name: "hello without a name", example: "hello",
			event: `{"trigger":"http","method":"POST","body":{}}`,
			want:  callResult{0, `{"message":"Hello, World!"}`},
		},
		{
			name: "hello with JSON sent as text", example: "hello",
			event: `{"trigger":"http","method":"POST","body":"{\"name\":\"Ada\"}"}`,
			want:  callResult{0, `{"message":"Hello, Ada!"}`},
		},
		{
			name: "hello with a body that is not an object", example: "hello",
			event: `{"trigger":"http","method":"POST","body":[1]}`,
			want:  callResult{0, `{"statusCode":400,"body":{"error":"want a JSON body like {\"name\": \"World\"}"}}`},
		},
		{
			name: "echo", example: "echo",
			event: `{"trigger":"http", "query":{"a":["1","2"]},"body":{"deep":[1,{"x":null}]},"extra":"\u00e9"}`,
			want:  callResult{0, `{"trigger":"http", "query":{"a":["1","2"]},"body":{"deep":[1,{"x":null}]},"extra":"\u00e9"}`},
		},
		{
			name: "user-lookup finds the row", example: "user-lookup",
			event:  `{"trigger":"http","user_id":"u-1"}`,
			host:   fakeHost{dbReply: `{"rows":[{"id":"u-1","visits":9007199254740993}],"rowCount":1,"command":"SELECT"}`},
			want:   callResult{0, `{"id":"u-1","visits":9007199254740993}`},
			wantDB: []string{`{"sql":"SELECT * FROM users WHERE id = $1","params":["u-1"]}`},
		},
		{
			name: "user-lookup 404", example: "user-lookup",
			event: `{"trigger":"http","user_id":"u-1"}`,
			host:  fakeHost{dbReply: `{"rows":[],"rowCount":0,"command":"SELECT"}`},
			want:  callResult{0, `{"statusCode":404,"body":{"error":"user not found"}}`},
		},
		{
			name: "user-lookup anonymous", example: "user-lookup",
			event: `{"trigger":"http","user_id":null}`,
			want:  callResult{0, `{"statusCode":401,"body":{"error":"sign in to look up your user"}}`},
		},
		{
			name: "user-lookup refused", example: "user-lookup",
			event: `{"trigger":"http","user_id":"u-1"}`,
			host:  fakeHost{dbReply: `{"error":{"code":"42501","message":"permission denied for table users"}}`},
			want:  callResult{1, `looking up user u-1: db_query 42501: permission denied for table users`},
		},
		{
			name: "sql-proxy relays request and error reply", example: "sql-proxy",
			event:  `{"trigger":"http","body":{"sql":"SET ROLE postgres","params":[]}}`,
			host:   fakeHost{dbReply: `{"error":{"code":"statement_rejected","message":"SET is not allowed"}}`},
			want:   callResult{0, `{"error":{"code":"statement_rejected","message":"SET is not allowed"}}`},
			wantDB: []string{`{"sql":"SET ROLE postgres","params":[]}`},
		},
		{
			name: "sql-proxy accepts a text body", example: "sql-proxy",
			event:  `{"trigger":"http","body":"{\"sql\":\"SELECT 1\"}"}`,
			host:   fakeHost{dbReply: `{"rows":[{"?column?":1}],"rowCount":1,"command":"SELECT"}`},
			want:   callResult{0, `{"rows":[{"?column?":1}],"rowCount":1,"command":"SELECT"}`},
			wantDB: []string{`{"sql":"SELECT 1"}`},
		},
		{
			name: "on-user-created", example: "on-user-created",
			event:  `{"trigger":"database","table":"users","operation":"INSERT","old":null,"new":{"id":"7b0c","email":"ada@example.com"},"event_id":5}`,
			host:   fakeHost{dbReply: `{"rows":[],"rowCount":1,"command":"INSERT"}`},
			want:   callResult{0, `{"profile_created":true,"user_id":"7b0c"}`},
			wantDB: []string{`{"sql":"INSERT INTO profiles (user_id, display_name) VALUES ($1, $2) ON CONFLICT DO NOTHING","params":["7b0c","ada"]}`},
		},
		{
			name: "on-user-created ignores other tables", example: "on-user-created",
			event:   `{"trigger":"database","table":"orders","operation":"INSERT","new":{"id":1}}`,
			want:    callResult{0, `null`},
			wantLog: "ignoring database event",
		},
		{
			name: "on-order-created", example: "on-order-created",
			event:  order,
			host:   fakeHost{dbReply: `{"rows":[],"rowCount":1,"command":"UPDATE"}`},
			want:   callResult{0, `{"product_id":3,"taken":2,"warehouse_notified":false}`},
			wantDB: []string{`{"sql":"UPDATE products SET stock = stock - $1 WHERE id = $2","params":[2,3]}`},
		},
		{
			name: "on-order-created notifies the warehouse", example: "on-order-created",
			event: order,
			host: fakeHost{
				env:        map[string]string{"WAREHOUSE_URL": "https://warehouse.example.com/ship"},
				dbReply:    `{"rows":[],"rowCount":1,"command":"UPDATE"}`,
				fetchReply: `{"status":202,"headers":{},"body":""}`,
			},
			want: callResult{0, `{"product_id":3,"taken":2,"warehouse_notified":true}`},
			check: func(t *testing.T, h *fakeHost) {
				want := `{"url":"https://warehouse.example.com/ship","method":"POST","headers":{"content-type":"application/json"},"body":"{\"id\":1,\"product_id\":3,\"quantity\":2}"}`
				if len(h.fetchRequests) != 1 || h.fetchRequests[0] != want {
					t.Errorf("fetch requests = %q\nwant [%q]", h.fetchRequests, want)
				}
			},
		},
		{
			name: "on-order-created unknown product", example: "on-order-created",
			event: order,
			host:  fakeHost{dbReply: `{"rows":[],"rowCount":0,"command":"UPDATE"}`},
			want:  callResult{1, `taking 2 of product 3 from stock: no such product`},
		},
		{
			name: "cleanup-sessions", example: "cleanup-sessions",
			event:   `{"trigger":"schedule","cron":"0 2 * * *","scheduled_time":"2026-02-06T02:00:00Z","actual_time":"2026-02-06T02:00:00.8Z"}`,
			host:    fakeHost{dbReply: `{"rows":[],"rowCount":12,"command":"DELETE"}`},
			want:    callResult{0, `{"deleted":12}`},
			wantDB:  []string{`{"sql":"DELETE FROM sessions WHERE expires_at \u003c NOW()","params":[]}`},
			wantLog: "deleted 12 expired sessions",
		},
		{
			name: "cleanup-old-data", example: "cleanup-old-data",
			event:   `{"trigger":"schedule","cron":"0 3 * * *","scheduled_time":"2026-02-06T03:00:00Z","actual_time":"2026-02-06T03:00:00.4Z"}`,
			host:    fakeHost{dbReply: `{"rows":[],"rowCount":7,"command":"DELETE"}`},
			want:    callResult{0, `{"deleted":7,"older_than_days":30}`},
			wantDB:  []string{`{"sql":"DELETE FROM logs WHERE created_at \u003c NOW() - make_interval(days =\u003e $1)","params":[30]}`},
			wantLog: "Deleted 7 old log entries",
		},
		{
			name: "cleanup-old-data refuses a bad RETENTION_DAYS", example: "cleanup-old-data",
			event: `{"trigger":"schedule","cron":"0 3 * * *"}`,
			host:  fakeHost{env: map[string]string{"RETENTION_DAYS": "0"}},
			want:  callResult{1, `RETENTION_DAYS "0" is not a positive number of days`},
		},
		{
			name: "send-welcome-email", example: "send-welcome-email",
			event: `{"trigger":"database","table":"users","operation":"INSERT","new":{"id":"7b0c"},"event_id":"41"}`,
			host: fakeHost{
				env:        map[string]string{"EMAIL_API_KEY": "re_key_123", "EMAIL_API_URL": "https://api.resend.com/emails"},
				dbReply:    `{"rows":[{"id":"7b0c","email":"ada@example.com","name":""}],"rowCount":1,"command":"SELECT"}`,
				fetchReply: `{"status":200,"headers":{},"body":"{\"id\":\"em_1\"}"}`,
			},
			want:   callResult{0, `{"email_id":"em_1","sent":true,"user_id":"7b0c"}`},
			wantDB: []string{`{"sql":"SELECT id::text AS id, email, coalesce(name, '') AS name FROM users WHERE id = $1","params":["7b0c"]}`},
			check: func(t *testing.T, h *fakeHost) {
				want := `{"url":"https://api.resend.com/emails","method":"POST","headers":{"authorization":"Bearer re_key_123","content-type":"application/json","idempotency-key":"welcome-41"},"body":"{\"from\":\"AeroDB \\u003cwelcome@example.com\\u003e\",\"subject\":\"Welcome to AeroDB!\",\"text\":\"Hello,\\n\\nwelcome to AeroDB! Your account is ready.\\n\",\"to\":[\"ada@example.com\"]}"}`
				if len(h.fetchRequests) != 1 || h.fetchRequests[0] != want {
					t.Errorf("fetch requests = %q\nwant [%q]", h.fetchRequests, want)
				}
			},
		},
		{
			name: "send-welcome-email fails when the API does", example: "send-welcome-email",
			event: `{"trigger":"database","table":"users","operation":"INSERT","new":{"id":"7b0c"},"event_id":"41"}`,
			host: fakeHost{
				env:        map[string]string{"EMAIL_API_KEY": "re_key_123", "EMAIL_API_URL": "https://api.resend.com/emails"},
				dbReply:    `{"rows":[{"id":"7b0c","email":"ada@example.com","name":"Ada"}],"rowCount":1,"command":"SELECT"}`,
				fetchReply: `{"status":503,"headers":{},"body":"busy"}`,
			},
			want: callResult{1, `the email API answered 503: busy`},
		},
		{
			name: "send-welcome-email without its key", example: "send-welcome-email",
			event: `{"trigger":"database","table":"users","operation":"INSERT","new":{"id":"7b0c"},"event_id":"41"}`,
			host:  fakeHost{dbReply: `{"rows":[{"id":"7b0c","email":"ada@example.com","name":"Ada"}],"rowCount":1,"command":"SELECT"}`},
			want:  callResult{1, `EMAIL_API_KEY is not set or not in config.env`},
		},
		{
			name: "flaky fails on fail=true", example: "flaky",
			event: `{"trigger":"database","table":"jobs","operation":"INSERT","new":{"fail":true},"event_id":"e-9","attempt":4}`,
			want:  callResult{1, `failing on purpose: fail is true (attempt 4)`},
		},
		{
			name: "flaky fails below fail_until", example: "flaky",
			event: `{"trigger":"database","table":"jobs","operation":"INSERT","new":{"fail_until":3},"event_id":"e-9","attempt":2}`,
			want:  callResult{1, `failing on purpose: attempt 2 is below fail_until 3`},
		},
		{
			name: "flaky succeeds at fail_until", example: "flaky",
			event: `{"trigger":"database","table":"jobs","operation":"INSERT","new":{"fail_until":3},"event_id":"e-9","attempt":3}`,
			want:  callResult{0, `{"attempt":3,"event_id":"e-9","ok":true}`},
		},
		{
			name: "flaky reads the old row of a delete", example: "flaky",
			event: `{"trigger":"database","table":"jobs","operation":"DELETE","old":{"fail":true},"new":null,"event_id":"e-9","attempt":1}`,
			want:  callResult{1, `failing on purpose: fail is true (attempt 1)`},
		},
		{
			name: "flaky over HTTP", example: "flaky",
			event: `{"trigger":"http","body":{"fail":false}}`,
			want:  callResult{0, `{"attempt":0,"event_id":"","ok":true}`},
		},
		{
			name: "stripe-webhook activates the subscription", example: "stripe-webhook",
			event:  `{"trigger":"webhook","headers":{"stripe-signature":"t=1,v1=00"},"body":{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","metadata":{"user_id":"u-1"}}}},"delivery_id":"d-1"}`,
			host:   fakeHost{dbReply: `{"rows":[],"rowCount":1,"command":"UPDATE"}`},
			want:   callResult{0, `{"activated":1,"received":true}`},
			wantDB: []string{`{"sql":"UPDATE subscriptions SET status = 'active' WHERE user_id = $1","params":["u-1"]}`},
		},
		{
			name: "stripe-webhook acknowledges other events", example: "stripe-webhook",
			event: `{"trigger":"webhook","body":{"id":"evt_2","type":"customer.created","data":{"object":{"id":"cus_1"}}}}`,
			want:  callResult{0, `{"ignored":"customer.created","received":true}`},
		},
		{
			name: "a malformed event fails the call", example: "echo",
			event: `{"trigger":`,
			want:  callResult{1, `decoding event: unexpected end of JSON input`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.host
			got := h.run(t, tt.example, tt.event)
			if got != tt.want {
				t.Errorf("handler = %d, output %s\nwant      %d, output %s", got.code, got.output, tt.want.code, tt.want.output)
			}
			if tt.wantDB != nil && !equalJSONLists(h.dbRequests, tt.wantDB) {
				t.Errorf("db_query requests = %q\nwant %q", h.dbRequests, tt.wantDB)
			}
			if tt.wantLog != "" && !slicesContainSubstring(h.logs, tt.wantLog) {
				t.Errorf("logs = %q, want a line with %q", h.logs, tt.wantLog)
			}
			if tt.check != nil {
				tt.check(t, &h)
			}
		})
	}
}

func equalJSONLists(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !json.Valid([]byte(got[i])) || got[i] != want[i] {
			return false
		}
	}
	return true
}

func slicesContainSubstring(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
