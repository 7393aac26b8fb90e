package aerofn_test

import (
	"errors"
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

// A function registers its handler from init; main stays empty.
func ExampleHandle() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		var in struct {
			Name string `json:"name"`
		}
		if err := ev.DecodeBody(&in); err != nil {
			return aerofn.Response{StatusCode: 400, Body: err.Error()}, nil
		}
		return map[string]string{"message": "Hello, " + in.Name + "!"}, nil
	})
}

func ExampleQuery() {
	res, err := aerofn.Query("SELECT id, title FROM todos WHERE done = $1", false)
	var dbErr *aerofn.DBError
	if errors.As(err, &dbErr) && dbErr.Code == "42501" {
		// Row-level security or a grant refused the caller.
		return
	}
	if err != nil {
		return
	}
	var todos []struct {
		ID    int64  `json:"id"`
		Title string `json:"title"`
	}
	if err := res.Decode(&todos); err != nil {
		return
	}
	for _, t := range todos {
		fmt.Println(t.ID, t.Title)
	}
}

func ExampleFetch() {
	resp, err := aerofn.Fetch(aerofn.FetchRequest{
		URL:     "https://api.example.com/notify",
		Method:  "POST",
		Headers: map[string]string{"content-type": "application/json"},
		Body:    `{"event":"signup"}`,
	})
	if err != nil {
		aerofn.Logf(aerofn.LevelWarn, "notifying: %v", err)
		return
	}
	aerofn.Logf(aerofn.LevelInfo, "notified: %d", resp.Status)
}
