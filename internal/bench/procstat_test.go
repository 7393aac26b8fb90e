package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The name holds spaces and a ')', as a process may choose.
	const line = "4242 (a b) (c)) S 1 4242 4242 0 -1 4194560 1500 20 7 1 250 125 0 0 20 0 12 0 1234 1000000 500 18446744073709551615\n"
	s, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{User: 2500 * time.Millisecond, System: 1250 * time.Millisecond, MinorFaults: 1500, MajorFaults: 7}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	later := ProcStat{User: 3 * time.Second, System: 2 * time.Second, MinorFaults: 1600, MajorFaults: 9}
	if d := later.Sub(s); d != (ProcStat{User: 500 * time.Millisecond, System: 750 * time.Millisecond, MinorFaults: 100, MajorFaults: 2}) {
		t.Fatalf("Sub: %+v", d)
	}
	if sum := s.Add(s); sum.User != 5*time.Second || sum.MinorFaults != 3000 {
		t.Fatalf("Add: %+v", sum)
	}
	for _, bad := range []string{"", "4242 (x S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 many 20 7 1 250 125 0"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestReadStatOfThisProcess(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.MinorFaults == 0 {
		t.Fatalf("a running Go process has faulted in some pages: %+v", s)
	}
	m, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Fatalf("%+v", m)
	}
}

func TestParseStatus(t *testing.T) {
	const status = "Name:\taerofn\nVmPeak:\t 2000000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	m, err := ParseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if m != (Memory{RSS: 40 << 20, HWM: 80 << 20}) {
		t.Fatalf("%+v", m)
	}
	for _, bad := range []string{"Name:\tx\n", "VmHWM:\t1 kB\n", "VmHWM:\t1 kB\nVmRSS:\t2 MB\n", "VmHWM:\tx kB\nVmRSS:\t2 kB\n"} {
		if _, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	d, err := ParseSchedstat([]byte("123456789 987654 321\n"))
	if err != nil || d != 987654 {
		t.Fatalf("got %v, %v", d, err)
	}
	if _, err := ParseSchedstat([]byte("12\n")); err == nil {
		t.Fatal("one field: no error")
	}
	if d := ReadRunDelay(os.Getpid()); d < 0 {
		t.Fatalf("own run delay %v", d)
	}
}
