package aerofn

import (
	"errors"
	"testing"
)

func TestQuery(t *testing.T) {
	fake := &fakeHost{dbReply: []byte(`{"rows":[{"id":9007199254740993,"title":"a","done":false},{"id":2,"title":"b","done":true}],"rowCount":2,"command":"SELECT"}`)}
	useHost(t, fake)

	res, err := Query("SELECT * FROM todos WHERE id > $1 AND title <> $2", 1, "x")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"sql":"SELECT * FROM todos WHERE id \u003e $1 AND title \u003c\u003e $2","params":[1,"x"]}`; string(fake.dbReq) != want {
		t.Errorf("request = %s\nwant      %s", fake.dbReq, want)
	}
	if res.RowCount != 2 || res.Command != "SELECT" || len(res.Rows) != 2 || res.Rows[1]["title"] != "b" {
		t.Errorf("result = %+v", res)
	}

	type todo struct {
		ID    int64  `json:"id"`
		Title string `json:"title"`
		Done  bool   `json:"done"`
	}
	var todos []todo
	if err := res.Decode(&todos); err != nil {
		t.Fatal(err)
	}
	if len(todos) != 2 || todos[0].ID != 9007199254740993 || !todos[1].Done {
		t.Errorf("Decode = %+v; want every digit of the bigint id", todos)
	}
}

func TestQueryNoParams(t *testing.T) {
	fake := &fakeHost{dbReply: []byte(`{"rows":[],"rowCount":3,"command":"DELETE"}`)}
	useHost(t, fake)
	res, err := Query("DELETE FROM sessions WHERE expires_at < NOW()")
	if err != nil {
		t.Fatal(err)
	}
	if string(fake.dbReq) != `{"sql":"DELETE FROM sessions WHERE expires_at \u003c NOW()","params":[]}` {
		t.Errorf("request = %s; want params as an empty list", fake.dbReq)
	}
	if res.RowCount != 3 || res.Command != "DELETE" || len(res.Rows) != 0 {
		t.Errorf("result = %+v", res)
	}
	var none []map[string]any
	if err := res.Decode(&none); err != nil || none == nil || len(none) != 0 {
		t.Errorf("Decode = %#v, %v; want an empty slice", none, err)
	}
}

func TestQueryError(t *testing.T) {
	useHost(t, &fakeHost{dbReply: []byte(`{"error":{"code":"42501","message":"permission denied for table todos"}}`)})
	_, err := Query("SELECT * FROM todos")
	var dbErr *DBError
	if !errors.As(err, &dbErr) {
		t.Fatalf("err = %v (%T), want *DBError", err, err)
	}
	if dbErr.Code != "42501" || dbErr.Message != "permission denied for table todos" {
		t.Errorf("DBError = %+v", dbErr)
	}
	if err.Error() != "db_query 42501: permission denied for table todos" {
		t.Errorf("Error() = %q", err)
	}
}

func TestQueryBadReply(t *testing.T) {
	for _, reply := range []string{``, `nope`, `{"rows":{}}`} {
		useHost(t, &fakeHost{dbReply: []byte(reply)})
		_, err := Query("SELECT 1")
		var dbErr *DBError
		if err == nil || errors.As(err, &dbErr) {
			t.Errorf("reply %q: err = %v; want a decoding error", reply, err)
		}
	}
}

func TestQueryUnencodableParam(t *testing.T) {
	useHost(t, &fakeHost{})
	if _, err := Query("SELECT $1", func() {}); err == nil {
		t.Error("Query with a func param succeeded")
	}
}

func TestQueryRaw(t *testing.T) {
	const reply = `{"error":{"code":"statement_rejected","message":"only SELECT, INSERT, UPDATE, DELETE"}}`
	fake := &fakeHost{dbReply: []byte(reply)}
	useHost(t, fake)
	got := QueryRaw([]byte(`{"sql":"SET ROLE postgres"}`))
	if string(got) != reply || string(fake.dbReq) != `{"sql":"SET ROLE postgres"}` {
		t.Errorf("QueryRaw = %s (sent %s)", got, fake.dbReq)
	}
}
