package engine

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// trapMessageEnv names the environment variable that makes this test binary
// print a trap's message and exit (TestTrapCapturesNoNativeBacktrace).
const trapMessageEnv = "AEROFN_TEST_PRINT_TRAP"

func init() {
	if os.Getenv(trapMessageEnv) == "" {
		return
	}
	store := wasmtime.NewStore(wasmtime.NewEngine())
	wasm, err := wasmtime.Wat2Wasm(`(module (func (export "f") unreachable))`)
	if err == nil {
		var m *wasmtime.Module
		if m, err = wasmtime.NewModule(store.Engine, wasm); err == nil {
			var inst *wasmtime.Instance
			if inst, err = wasmtime.NewInstance(store, m, nil); err == nil {
				_, err = inst.GetFunc(store, "f").Call(store)
			}
		}
	}
	if err == nil {
		os.Stdout.WriteString("no trap\n")
		os.Exit(1)
	}
	os.Stdout.WriteString(err.Error())
	os.Exit(0)
}

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
			cmd := exec.Command(os.Args[0], "-test.run=^$")
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
			msg := string(out)
			if !strings.Contains(msg, "unreachable") {
				t.Fatalf("not a trap's message: %q", msg)
			}
			if got := strings.Contains(msg, "Stack backtrace:"); got != c.backtrace {
				t.Errorf("native backtrace in the message: %v, want %v:\n%.2000s", got, c.backtrace, msg)
			}
		})
	}
}
