package invoker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aerodb/aerofn/internal/engine"
)

func TestCauseOf(t *testing.T) {
	for st, want := range map[engine.Status]error{
		engine.StatusTimeout: ErrTimeout, engine.StatusMemoryExceeded: ErrMemory,
		engine.StatusInterrupted: ErrInterrupted, engine.StatusError: ErrFunction,
	} {
		err := causeOf(Outcome{Status: st, Error: "why"})
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", st, err, want)
		}
	}
	if err := causeOf(Outcome{Status: engine.StatusSuccess}); err != nil {
		t.Errorf("success: %v", err)
	}
}

func TestRetryable(t *testing.T) {
	for err, want := range map[error]bool{
		ErrBusy: true, fmt.Errorf("function x: %w", ErrNotReady): true,
		ErrNotFound: false, ErrDisabled: false, errors.New("database down"): false, nil: false,
	} {
		if Retryable(err) != want {
			t.Errorf("Retryable(%v) = %v", err, !want)
		}
	}
}
