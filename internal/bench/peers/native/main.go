// Command native is the benchmark's baseline: the hello handler
// (POST {"name"} → {"message":"Hello, <name>!"}) written directly in Go on
// net/http, as a process of its own like aerofn serve. It listens on the
// loopback address given as its only argument.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 || !strings.HasPrefix(os.Args[1], "127.0.0.1:") {
		fmt.Fprintln(os.Stderr, "usage: native 127.0.0.1:PORT")
		os.Exit(2)
	}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, `{"error":"bad_request"}`, http.StatusBadRequest)
			return
		}
		if in.Name == "" {
			in.Name = "World"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "Hello, " + in.Name + "!"})
	})
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
