package main

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aerodb/aerofn/internal/bench"
)

// Targets of the server-under-load section (issue: serve real traffic as
// fast as the engine allows).
const (
	targetEchoVsWorkerd   = 1.0  // echo (WAT) req/s at 64 connections over workerd's
	targetEchoVsNative    = 0.40 // over the native handler's
	targetHelloVsWorkerd  = 0.5  // hello (Go SDK) req/s over workerd's
	targetScaling         = 1.7  // req/s at 64 connections over req/s at 1
	targetP99             = 20 * time.Millisecond
	targetRecordedVsCold  = 1.25 // recorded duration_ms p50 over the in-process cold start p50
	targetDeploy          = 2 * time.Second
	targetFirstCall       = 50 * time.Millisecond
	targetConns           = 64
	recordedDurationConns = 1
)

func (s *serveBench) section(ts []*target, fc firstCallResults, rec recorded, coldHello coldRef) bench.Section {
	var b strings.Builder
	top := s.cfg.levels[len(s.cfg.levels)-1]

	// At a glance: req/s by level, and latency at the targets' level.
	b.WriteString("| target |")
	for _, c := range s.cfg.levels {
		fmt.Fprintf(&b, " req/s at %d |", c)
	}
	fmt.Fprintf(&b, " p50 / p99 at %d |\n|---|", targetConns)
	b.WriteString(strings.Repeat("---|", len(s.cfg.levels)+1) + "\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "| %s |", t.name)
		for _, c := range s.cfg.levels {
			if m, ok := t.at(c); ok {
				fmt.Fprintf(&b, " %s |", thousands(m.rps))
			} else {
				b.WriteString(" – |")
			}
		}
		if m, ok := t.at(targetConns); ok {
			fmt.Fprintf(&b, " %s / %s ms |\n", msf(m.p50), msf(m.p99))
		} else {
			b.WriteString(" – |\n")
		}
	}
	b.WriteString("\nEvery cell in detail:\n\n")
	b.WriteString("| target | conns | req/s | p50 | p99 | CPU user µs/call | CPU sys µs/call | page faults/call | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range ts {
		for _, c := range s.cfg.levels {
			m, ok := t.at(c)
			if !ok {
				continue
			}
			errs := "0"
			if m.errs > 0 {
				errs = fmt.Sprintf("**%d of %d**", m.errs, m.requests)
			}
			perCall := func(d time.Duration) string {
				return fmt.Sprintf("%.0f", float64(d.Nanoseconds())/1e3/float64(max(1, m.requests)))
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %.1f | %s |\n", t.name, c, thousands(m.rps), msf(m.p50), msf(m.p99),
				perCall(m.cpu.User), perCall(m.cpu.System), float64(m.cpu.MinorFaults+m.cpu.MajorFaults)/float64(max(1, m.requests)), errs)
		}
	}
	fmt.Fprintf(&b, "\nMemory of each server process (the two aerofn rows are one process, so its peak covers both):\n\n| target | most RSS seen at %d connections | peak RSS (VmHWM) at the end |\n|---|---|---|\n", top)
	for _, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.name, mib(t.rss), mib(t.hwm))
	}

	b.WriteString("\nCold paths on the real binary (wall time of one request on a new connection, as the client sees it):\n\n| measurement | samples (ms) | target | |\n|---|---|---|---|\n")
	coldRow := func(name string, ds []time.Duration, fails int, limit time.Duration) {
		vals := make([]string, len(ds))
		for i, d := range ds {
			vals[i] = msf(d)
		}
		if fails > 0 {
			vals = append(vals, fmt.Sprintf("%d failed", fails))
		}
		tgt, verdict := "", ""
		if limit > 0 {
			tgt = "≤ " + msf(limit) + " ms each"
			switch {
			case fails > 0:
				verdict = fmt.Sprintf("NOT met: %d of %d failed (see the problems below)", fails, s.cfg.firstCalls)
			case len(ds) == 0:
				verdict = "NOT met: not measured"
			case slices.Max(ds) <= limit:
				verdict = "met"
			default:
				verdict = fmt.Sprintf("NOT met: the slowest took %.1fx the target", float64(slices.Max(ds))/float64(limit))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, strings.Join(vals, ", "), tgt, verdict)
	}
	coldRow("deploy of examples/hello on node A (`POST /admin/v1/functions`, answered once node B serves the new version too)", fc.deploy, 0, targetDeploy)
	if len(fc.deployCPU) > 0 {
		vals := make([]string, len(fc.deployCPU))
		for i, c := range fc.deployCPU {
			vals[i] = msf(c.User) + " / " + msf(c.System)
		}
		fmt.Fprintf(&b, "| node A's CPU over each deploy, user / sys (ms) | %s | | |\n", strings.Join(vals, ", "))
	}
	coldRow("first call on node B, which was running, right after the deploy on A returned", fc.onB, fc.failsB, targetFirstCall)
	coldRow("first call on node A after its own deploy", fc.onA, fc.failsA, 0)
	coldRow("node B restarted with an empty data directory: start to /healthz answering", fc.restartHealthy, 0, 0)
	coldRow("node B restarted with an empty data directory: its first call after /healthz", fc.restarted, fc.failsRestarted, targetFirstCall)
	for _, p := range fc.problems {
		fmt.Fprintf(&b, "\nProblem: %s\n", p)
	}
	if len(s.idle) > 0 {
		b.WriteString("\nEach node was idle before it was measured: the bench waited until its /metrics showed no compile or module load in progress " +
			"(`aerofn_modules_compiling`, `aerofn_modules_background_pending`, `aerofn_js_runtime_warming` all 0), then read its CPU time over one second:\n\n" +
			"| node | before | waited | CPU user / sys over the idle second | |\n|---|---|---|---|---|\n")
		for _, r := range s.idle {
			fmt.Fprintf(&b, "| %s | %s | %s ms | %s / %s ms | %s |\n", r.node, r.when, msf(r.waited), msf(r.cpu.User), msf(r.cpu.System), r.err)
		}
	}

	if len(ts) > 0 { // none with -cold-only
		b.WriteString("\nTargets (ratios from this run):\n\n| target | measured | |\n|---|---|---|\n")
		for _, r := range s.targetRows(ts, rec, coldHello) {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r[0], r[1], r[2])
		}
	}
	if len(s.notes) > 0 {
		b.WriteString("\n")
		for _, n := range s.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}

	var versions []string
	for _, t := range ts {
		if t.version != "" {
			versions = append(versions, t.name+": "+t.version)
		}
	}
	about := fmt.Sprintf("`bin/aerofn serve` as a process of its own on a new database and a free loopback port, "+
		"with `examples/hello` (Go SDK) and the small WAT echo module deployed; beside it the same handler "+
		"(`POST {\"name\"}` → `{\"message\":\"Hello, <name>!\"}`) served by a native Go `net/http` program (internal/bench/peers/native; its two loaded rows run the same program spending 10 or 50 µs more CPU in a loop on every request, to show how a plain Go server's latency on these cores moves with what a request costs), "+
		"workerd, Deno (`Deno.serve`) and plain Node.js (internal/bench/peers), each its own process on loopback. "+
		"Load generator: %s on loopback, keep-alive connections, each sending its next POST when the last answer arrived; aerofn calls carry the anon key. "+
		"Every target ran at every level for %s in each of %d rounds, the targets' order rotating from cell to cell, after a %s warm-up each. "+
		"Only this section: `go run ./internal/bench/cmd -only serve` (`-n 100` gives the short run `make test` uses: one round of 1 s at 1 and 64 connections, no npm peers). Versions: %s.\n\n"+
		"Columns: **req/s**, completed requests per second, median of the rounds; **p50**, **p99**, latency percentiles in ms as the load generator saw them, median of the rounds; "+
		"**CPU user/sys µs/call**, the server process's user and kernel CPU time (all threads, `utime`/`stime` of /proc/PID/stat, read before each cell and again once the process is idle after it, so background work such as aerofn's invocation records counts) summed over the rounds and divided by the requests served; "+
		"**page faults/call**, minor plus major faults of the server process counted the same way; **errors**, socket errors and non-2xx answers (0 unless shown). "+
		"The load generator shares the machine's cores with the server, and PostgreSQL's own work on aerofn's records is not in aerofn's CPU figures. "+
		"aerofn's one JSON line per call on stdout goes to /dev/null. "+
		"The machine's 1-minute load average was %s when the section began and %s when it ended (%d cores).",
		s.gen.Name(), s.cfg.duration, s.cfg.rounds, s.cfg.warmup, strings.Join(versions, "; "), s.loadBefore, s.loadAfter, runtime.NumCPU())
	return bench.Section{Title: "Server under load: the real binary beside other runtimes", About: about, Table: b.String()}
}

// targetRows evaluates the section's targets: name, measured, verdict.
func (s *serveBench) targetRows(ts []*target, rec recorded, coldHello coldRef) [][3]string {
	find := func(name string) (summary, bool) { return atTargetConns(ts, name) }
	var rows [][3]string
	verdict := func(ok bool, why string) string {
		if ok {
			return "met"
		}
		return "NOT met: " + why
	}
	ratioRow := func(name, what, peer string, want float64) {
		a, okA := find(what)
		p, okP := find(peer)
		if !okA || !okP {
			missing := peer
			if !okA {
				missing = what
			}
			rows = append(rows, [3]string{name, "–", "NOT met: not measured, " + missing + " did not run (see the notes)"})
			return
		}
		r := a.rps / p.rps
		rows = append(rows, [3]string{name, fmt.Sprintf("%s %s vs %s %s req/s: %.2fx", what, thousands(a.rps), peer, thousands(p.rps), r),
			verdict(r >= want, fmt.Sprintf("%.0f%% of the target ratio", 100*r/want))})
	}
	ratioRow("echo (WAT) at 64 connections ≥ workerd's req/s", "aerofn: echo (WAT)", "workerd", targetEchoVsWorkerd)
	ratioRow("echo (WAT) at 64 connections ≥ 40% of the native handler's req/s", "aerofn: echo (WAT)", nativeName, targetEchoVsNative)
	ratioRow("hello (Go SDK) at 64 connections ≥ half of workerd's req/s", "aerofn: hello (Go SDK)", "workerd", targetHelloVsWorkerd)
	for _, t := range ts[:2] {
		one, ok1 := t.at(1)
		many, okN := t.at(targetConns)
		name := fmt.Sprintf("%s: req/s at 64 connections ≥ %.1fx at 1", t.name, targetScaling)
		if !ok1 || !okN {
			rows = append(rows, [3]string{name, "–", "NOT met: not measured"})
			continue
		}
		r := many.rps / one.rps
		rows = append(rows, [3]string{name, fmt.Sprintf("%s vs %s: %.2fx", thousands(many.rps), thousands(one.rps), r),
			verdict(r >= targetScaling, "throughput does not grow with connections")})
	}
	for _, t := range ts[:2] {
		m, ok := t.at(targetConns)
		name := fmt.Sprintf("%s: p99 at 64 connections ≤ %s ms", t.name, msf(targetP99))
		if !ok {
			rows = append(rows, [3]string{name, "–", "NOT met: not measured"})
			continue
		}
		why := fmt.Sprintf("%.1fx the bound", float64(m.p99)/float64(targetP99))
		if natives := loadedNatives(ts); natives != "" {
			why += fmt.Sprintf(", at %s µs of CPU a call; %s", cpuPerCall(m), natives)
		}
		rows = append(rows, [3]string{name, msf(m.p99) + " ms", verdict(m.p99 <= targetP99, why)})
	}
	name := fmt.Sprintf("hello's server-recorded duration_ms p50 (its %d-connection calls, aerofn.invocations) ≤ %.2fx the in-process cold start p50", recordedDurationConns, targetRecordedVsCold)
	switch {
	case rec.n == 0 || coldHello.p50 == 0:
		rows = append(rows, [3]string{name, "–", "NOT met: not measured"})
	default:
		r := float64(rec.p50) / float64(coldHello.p50)
		measured := fmt.Sprintf("%s ms over %d records vs %s ms: %.2fx", msf(rec.p50), rec.n, msf(coldHello.p50), r)
		if rec.n < rec.want {
			measured += fmt.Sprintf(" (%d records of %d calls arrived in time)", rec.n, rec.want)
		}
		why := "the server's sandbox is slower than the engine alone"
		if coldHello.gapP50 > 0 {
			why = fmt.Sprintf("a call after the gap between requests starts with cold caches: in process, with the CPU idle %d µs before each call, hello's p50 is %s ms (the recorded p50 is %.2fx that)",
				coldStartGap.Microseconds(), msf(coldHello.gapP50), float64(rec.p50)/float64(coldHello.gapP50))
		}
		rows = append(rows, [3]string{name, measured, verdict(r <= targetRecordedVsCold, why)})
	}
	return rows
}

// atTargetConns is the named target's cells at the targets' level.
func atTargetConns(ts []*target, name string) (summary, bool) {
	for _, t := range ts {
		if t.name == name {
			return t.at(targetConns)
		}
	}
	return summary{}, false
}

// cpuPerCall is a level's user and system CPU per request, in µs.
func cpuPerCall(m summary) string {
	return fmt.Sprintf("%.0f", float64((m.cpu.User+m.cpu.System).Nanoseconds())/1e3/float64(max(1, m.requests)))
}

// loadedNatives is what the native handler's p99 at 64 connections did in
// this run as its requests cost more CPU (nativeWork), for the p99 rows;
// "" when the loaded variants did not run.
func loadedNatives(ts []*target) string {
	find := func(name string) (summary, bool) { return atTargetConns(ts, name) }
	bare, ok := find(nativeName)
	if !ok {
		return ""
	}
	parts := []string{fmt.Sprintf("%s ms bare (%s µs of CPU a call)", msf(bare.p99), cpuPerCall(bare))}
	for _, w := range nativeWork {
		if m, ok := find(loadedNativeName(w)); ok {
			parts = append(parts, fmt.Sprintf("%s ms with %d µs more a request (%s µs)", msf(m.p99), w.Microseconds(), cpuPerCall(m)))
		}
	}
	if len(parts) == 1 {
		return ""
	}
	return "the native Go handler's p99 in the same run: " + strings.Join(parts, ", ")
}

func msf(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	default:
		return fmt.Sprintf("%.2f", ms)
	}
}

func mib(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// thousands formats a rate as a whole number with thousands separators.
func thousands(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
