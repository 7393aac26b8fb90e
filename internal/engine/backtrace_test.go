package engine

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// trapMessageEnv makes TestTrapMessageHelper print a trap's message: the
// test binary run as a child by TestTrapCapturesNoNativeBacktrace, after
// every package init has run.
const trapMessageEnv = "AEROFN_TEST_PRINT_TRAP"

func TestTrapMessageHelper(t *testing.T) {
	if os.Getenv(trapMessageEnv) == "" {
		t.Skip("run by TestTrapCapturesNoNativeBacktrace")
	}
	store := wasmtime.NewStore(wasmtime.NewEngine())
	wasm, err := wasmtime.Wat2Wasm(`(module (func (export "f") unreachable))`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wasmtime.NewModule(store.Engine, wasm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := wasmtime.NewInstance(store, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = inst.GetFunc(store, "f").Call(store); err == nil {
		t.Fatal("no trap")
	}
	fmt.Printf("%s\n%s\n%s\n", trapMessageBegin, err.Error(), trapMessageEnd)
}

// The markers around the message in the helper's output.
const (
	trapMessageBegin = "---- trap message"
	trapMessageEnd   = "---- end of trap message"
)

// A process started with RUST_BACKTRACE=1 creates wasmtime's errors without
// a native backtrace, unless RUST_LIB_BACKTRACE asks for one: the second
// case shows that the first would see a backtrace if one were captured.
func TestTrapCapturesNoNativeBacktrace(t *testing.T) {
	for _, c := range []struct {
		name      string
		env       []string
		backtrace bool
	}{
		{"RUST_BACKTRACE=1", []string{"RUST_BACKTRACE=1"}, false},
		{"RUST_LIB_BACKTRACE=1", []string{"RUST_BACKTRACE=1", "RUST_LIB_BACKTRACE=1"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTrapMessageHelper$", "-test.count=1")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "RUST_BACKTRACE=") && !strings.HasPrefix(kv, "RUST_LIB_BACKTRACE=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, c.env...)
			cmd.Env = append(cmd.Env, trapMessageEnv+"=1")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			_, msg, _ := strings.Cut(string(out), trapMessageBegin)
			msg, _, ok := strings.Cut(msg, trapMessageEnd)
			if !ok {
				t.Fatalf("no trap message in the helper's output:\n%s", out)
			}
			if !strings.Contains(msg, "unreachable") {
				t.Fatalf("not a trap's message: %q", msg)
			}
			if got := strings.Contains(msg, "Stack backtrace:"); got != c.backtrace {
				t.Errorf("native backtrace in the message: %v, want %v:\n%.2000s", got, c.backtrace, msg)
			}
		})
	}
}
