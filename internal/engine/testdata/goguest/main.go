// Command goguest is the Go guest of the engine's tests: a function built
// with the SDK, as users build theirs, whose body {"do": ...} picks what a
// call does.
package main

import (
	cryptorand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

var (
	initTime = time.Now()
	calls    int                              // a fresh instance starts at 0
	table    = map[string]int{"a": 1, "b": 2} // built during init
)

func init() {
	aerofn.Handle(handle)
}

type request struct {
	Do  string `json:"do"`
	MiB int    `json:"mib"`
	Ms  int    `json:"ms"`
}

func handle(ev aerofn.Event) (any, error) {
	var in request
	if err := ev.DecodeBody(&in); err != nil {
		return nil, err
	}
	calls++
	switch in.Do {
	case "state":
		return map[string]any{
			"calls":      calls,
			"table":      table["b"],
			"since_init": time.Since(initTime).Nanoseconds(),
			"init_unix":  initTime.Unix(),
			"now_unix":   time.Now().Unix(),
		}, nil
	case "rand":
		buf := make([]byte, 16)
		if _, err := cryptorand.Read(buf); err != nil {
			return nil, err
		}
		return map[string]any{"math": rand.Int64(), "crypto": hex.EncodeToString(buf)}, nil
	case "log":
		fmt.Println("to stdout")
		fmt.Fprint(os.Stderr, "partial to stderr")
		aerofn.Info("via log")
		return "logged", nil
	case "alloc":
		b := make([]byte, in.MiB<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return len(b), nil
	case "loop":
		for {
			calls++
		}
	case "sleep":
		t0 := time.Now()
		time.Sleep(time.Duration(in.Ms) * time.Millisecond)
		return time.Since(t0).Milliseconds(), nil
	case "goroutines":
		var wg sync.WaitGroup
		results := make(chan int, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-time.After(time.Millisecond)
				results <- i
			}()
		}
		wg.Wait()
		close(results)
		sum := 0
		for r := range results {
			sum += r
		}
		return sum, nil
	case "env":
		v, _ := aerofn.Env("KEY")
		return v, nil
	case "panic":
		panic("boom")
	}
	return nil, fmt.Errorf("unknown request %q", in.Do)
}

func main() {}
