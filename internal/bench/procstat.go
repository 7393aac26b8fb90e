package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. The kernel
// exports them in USER_HZ, which is 100 on every architecture Linux builds
// for today (sysconf(_SC_CLK_TCK) only reports it).
const userHZ = 100

// ProcStat is a process's cumulative CPU time and page faults, all threads
// together, from /proc/PID/stat.
type ProcStat struct {
	User, System time.Duration
	MinorFaults  uint64
	MajorFaults  uint64
}

// Sub returns the growth from earlier to s.
func (s ProcStat) Sub(earlier ProcStat) ProcStat {
	return ProcStat{User: s.User - earlier.User, System: s.System - earlier.System,
		MinorFaults: s.MinorFaults - earlier.MinorFaults, MajorFaults: s.MajorFaults - earlier.MajorFaults}
}

// Add sums two deltas.
func (s ProcStat) Add(o ProcStat) ProcStat {
	return ProcStat{User: s.User + o.User, System: s.System + o.System,
		MinorFaults: s.MinorFaults + o.MinorFaults, MajorFaults: s.MajorFaults + o.MajorFaults}
}

// ParseStat reads the contents of /proc/PID/stat. The second field, the
// command name, is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("parsing /proc stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(3) ppid(4) pgrp(5) session(6) tty_nr(7)
	// tpgid(8) flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13)
	// utime(14) stime(15); f[0] is field 3.
	const first = 3
	if len(f) < 15-first+1 {
		return ProcStat{}, fmt.Errorf("parsing /proc stat: %d fields after the name, want at least %d", len(f), 15-first+1)
	}
	var v [4]uint64
	for j, field := range []int{10, 12, 14, 15} {
		n, err := strconv.ParseUint(f[field-first], 10, 64)
		if err != nil {
			return ProcStat{}, fmt.Errorf("parsing /proc stat field %d: %w", field, err)
		}
		v[j] = n
	}
	tick := time.Second / userHZ
	return ProcStat{MinorFaults: v[0], MajorFaults: v[1], User: time.Duration(v[2]) * tick, System: time.Duration(v[3]) * tick}, nil
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseStat(b)
}

// Memory is a process's resident set now and its high-water mark, in bytes,
// from /proc/PID/status.
type Memory struct {
	RSS, HWM int64
}

// ParseStatus reads VmRSS and VmHWM from the contents of /proc/PID/status.
func ParseStatus(b []byte) (Memory, error) {
	var m Memory
	var seen int
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("parsing /proc status: %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parsing /proc status: %q: %w", line, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
		seen++
	}
	if seen != 2 {
		return Memory{}, fmt.Errorf("parsing /proc status: VmRSS or VmHWM missing")
	}
	return m, nil
}

// ReadStatus reads /proc/PID/status.
func ReadStatus(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return ParseStatus(b)
}

// ParseSchedstat reads the time a thread has waited on a run queue for a
// CPU, the second field of /proc/PID/task/TID/schedstat (in ns).
func ParseSchedstat(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("parsing schedstat: %q", b)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing schedstat: %w", err)
	}
	return time.Duration(n), nil
}

// ReadRunDelay sums the time all of a process's threads have waited for a
// CPU. Threads that have exited are not counted, so compare readings of a
// process whose threads live as long as it does (a Go server's).
func ReadRunDelay(pid int) time.Duration {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var t time.Duration
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, e.Name()))
		if err != nil {
			continue
		}
		if d, err := ParseSchedstat(b); err == nil {
			t += d
		}
	}
	return t
}

// LoadAverage is the machine's 1-minute load average, which says how much
// else ran beside a bench.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
