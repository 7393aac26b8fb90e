// Command native is the benchmark's baseline: the hello handler
// (POST {"name"} → {"message":"Hello, <name>!"}) written directly in Go on
// net/http, as a process of its own like aerofn serve. It listens on the
// loopback address given as its first argument.
//
// A second argument, a duration such as 10us, makes every request also
// spend about that much CPU in a loop before answering (its rate measured
// once at start). The bench uses it to show how the latency of a plain Go
// server on the same cores moves with the CPU a request costs.
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 || !strings.HasPrefix(os.Args[1], "127.0.0.1:") {
		fmt.Fprintln(os.Stderr, "usage: native 127.0.0.1:PORT [CPU per request, e.g. 10us]")
		os.Exit(2)
	}
	var work int
	if len(os.Args) == 3 {
		d, err := time.ParseDuration(os.Args[2])
		if err != nil || d < 0 {
			fmt.Fprintln(os.Stderr, "native: bad CPU per request:", os.Args[2])
			os.Exit(2)
		}
		work = int(float64(d) * loopsPerNanosecond())
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
		spin(work)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "Hello, " + in.Name + "!"})
	})
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var sink uint64

// spin runs n steps of a dependent multiply-add chain: CPU work the
// compiler cannot drop, with no memory traffic and no system call.
//
//go:noinline
func spin(n int) {
	x := sink
	for i := range n {
		x = x*6364136223846793005 + uint64(i)
	}
	sink = x
}

// loopsPerNanosecond is spin's rate on this machine now: the best of five
// 20 ms samples, so that a sample the kernel interrupted counts least.
func loopsPerNanosecond() float64 {
	const n = 1 << 20
	best := 0.0
	for range 5 {
		start := time.Now()
		k := 0
		for time.Since(start) < 20*time.Millisecond {
			spin(n)
			k += n
		}
		best = max(best, float64(k)/float64(time.Since(start)))
	}
	return best
}
