package aerofn

import (
	"slices"
	"testing"
)

func TestLog(t *testing.T) {
	fake := &fakeHost{}
	useHost(t, fake)
	Debug("d")
	Info("i")
	Warn("w")
	Error("e")
	Logf(LevelInfo, "%d rows", 3)
	Log(Level(9), "odd level")
	want := []string{"debug d", "info i", "warn w", "error e", "info 3 rows", "info odd level"}
	if !slices.Equal(fake.logs, want) {
		t.Errorf("logs = %q\nwant %q", fake.logs, want)
	}
}

func TestEnv(t *testing.T) {
	useHost(t, &fakeHost{vars: map[string]string{"API_KEY": "k", "EMPTY": ""}})
	if v, ok := Env("API_KEY"); v != "k" || !ok {
		t.Errorf("Env(API_KEY) = %q, %v", v, ok)
	}
	if v, ok := Env("EMPTY"); v != "" || !ok {
		t.Errorf("Env(EMPTY) = %q, %v; want set but empty", v, ok)
	}
	if _, ok := Env("MISSING"); ok {
		t.Error("Env(MISSING) found")
	}
}
