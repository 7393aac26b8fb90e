/*
Package engine runs WebAssembly function modules under wasmtime: each version
is compiled once (its artifact cached on disk), every call gets an instance
in the module's initial state (a new one, or for a pre-initialised module
one reset after an earlier call, reuse.go) with a deadline (epoch interruption), a memory cap (store
limiter) and a bounded stack. It implements the host side of docs/ABI.md;
what db_query, env and http_fetch actually do is supplied by the caller
through Host, so nothing here knows about HTTP or Postgres.

Below: the lifecycle of a module and of a call, and what can go wrong at each
step.

# Loading (once per module version)

	LoadFrom(hash, Source{Artifact, CheapArtifact, Wasm, Cheap})
	                                            (Load(hash, wasm): Wasm only)
	  │
	  ├─ in-memory LRU hit ───────────────────────────────► *Module
	  ├─ another Load of hash in flight ── wait for it ────► its *Module / error
	  │     (without Wasm: if it is compiling, ErrNotCompiled at once)
	  ├─ CacheDir/<hash>.v2.preinit.cwasm accepted by wasmtime (mmap)
	  │                                  ► check ABI ► *Module
	  ├─ Artifact() returns one (another node's compile, artifact.go)
	  │     ► write it to CacheDir ► accepted by wasmtime (mmap) ► *Module
	  │     refused or unreadable: Stats.ArtifactLoadFailures, go on
	  ├─ the cheap tier's (tier.go): CacheDir/<hash>.v2.preinit.cheap.cwasm,
	  │   else CheapArtifact() ───────────────────────────► *Module (TierCheap)
	  ├─ no Wasm ──────────────────────────────────────────► ErrNotCompiled
	  └─ else Wasm() ► guard memory.grow (growguard.go) ► compile ► check ABI ► write <hash>.v2.preinit.cwasm ► *Module
	        │                                 (temp file, fsync, rename)
	        └─ module exports _initialize: pre-initialise it (preinit.go)
	              scan code ► export every mutable global
	              ► translate for wazero's interpreter (no compile)
	              ► instantiate in a sandbox, run _initialize once
	                (the interpreter gives up: past the deadline, its call
	                depth, a module it refuses: compile cheaply on a second
	                wasmtime engine and run it there; Stats.InitRetries)
	              ► snapshot: memory → data segments, globals → initialisers,
	                no _initialize export ► compile the snapshot (the one
	                compile) ► check ABI
	                (Source.Cheap: compiled by Winch on the tier engine,
	                written as <hash>.v2.preinit.cheap.cwasm and mapped
	                from that file into the tier engine, whose pool runs
	                its calls; the module is TierCheap and keeps the
	                snapshot for Optimize; a snapshot Winch refuses is
	                compiled with the Engine's settings)
	              a step fails: the module is compiled as it is and runs
	              _initialize per call
	              (Stats.PreinitFailures; Module.Preinitialized says why)

	Optimize(hash)   a TierCheap module in memory: compile its snapshot (or,
	                 loaded without one, its Wasm) with the Engine's
	                 settings, write <hash>.v2.preinit.cwasm, prime, swap
	Upgrade(hash, artifact)   the same from another engine's optimised artifact
	swap             calls that start after it get the optimised module;
	                 calls running keep their instance of the cheap one;
	                 its idle reusable instances end; the cheap file goes

Artifacts are keyed by Fingerprint (wasmtime's own compatibility record:
version, target, compiler settings), so engines that cannot use each
other's never exchange them; cheap-tier artifacts by CheapFingerprint
(the tier engine's record, which names Winch). wasmtime runs Winch's code
only on an engine whose compiler is Winch, so cheap modules are loaded into
and run on the tier engine, with its own linker and pool.

A cached artifact that wasmtime refuses (another wasmtime version or engine
configuration, a truncated file) is counted in Stats.DiskLoadFailures and
recompiled; the new artifact replaces it. With Config.DisablePreinit the
artifact is <hash>.v2.cwasm and never a snapshot.

# Pre-initialisation

A Go guest spends most of its cold start in _initialize: the Go runtime and
every package's init, about a millisecond. Load runs it once per version,
in a sandbox with the default limits, and compiles the instance's state
after it into a new module, which every call instantiates (wasmtime maps
its memory copy-on-write from the artifact). That one run happens in
wazero's interpreter (initrun.go), which takes a tenth of the CPU of even
Cranelift's cheapest compile to get ready; wasmtime compiles only the
snapshot and runs every call. In the sandbox _initialize may
use clocks, random and sleep; calling anything that belongs to a call
(input, output, logs, stdout/stderr, proc_exit) or reaches a Host (env,
db_query, http_fetch) ends the attempt, so no secret and no database answer
can end up in a snapshot. In a call, the guest's clocks continue from where
_initialize left them. What initialisation computes is shared by every call
of the version, the Go runtime's random state included (docs/ABI.md says
what that means for guests); preinit.go gives the soundness argument.

# Running (every call; no state crosses calls)

	Run(ctx, m, input, limits, host)
	  │ deadline = min(now + limits.Timeout, ctx's deadline)
	  ├─ run token (pool.go)
	  ├─ a pre-initialised snapshot with an idle instance reset after an
	  │   earlier call (reuse.go): take it, its store's data = this callState
	  ├─ else new Store, its data = callState (input, output, logs, host, deadline)
	  ├─ store limiter: memory ≤ limits.MemoryBytes, ≤100k table elements,
	  │                 1 instance, ≤4 tables, 1 memory
	  ├─ epoch deadline 1 tick ahead + C epoch callback
	  │     every tick (Config.EpochTick): past the deadline, or ctx done
	  │     (flag set by context.AfterFunc)? ── stop the guest : re-arm
	  ├─ shared Linker.Instantiate (host functions find callState through
	  │   the store's data, so the linker is built once per Engine)
	  ├─ _initialize()           if exported (a snapshot does not export it)
	  ├─ handler() → i32
	  │     host calls: aerodb.* and wasi_snapshot_preview1.*, every pointer
	  │     bounds-checked; db_query/http_fetch get a ctx with the deadline
	  ├─ flush unterminated stdout/stderr lines into the log
	  ├─ classify → Result
	  └─ handler returned (not interrupted, no proc_exit), memory not grown,
	      the instance reusable: reset memory (PAGEMAP_SCAN: the written
	      pages copied back, or at a trim dropped when unchanged; after
	      a call without a page fault the pages the last scan found,
	      copied back unscanned; a one-page memory compared with the
	      snapshot instead) and
	      globals, keep it idle;
	      else store.Close() (wasmtime resets the pool slot);
	      then free the interrupt flag

# Failure modes and the status they get

	success          handler returned 0, or the guest called proc_exit(0);
	                 Output is the last bytes passed to output
	error            handler returned non-zero (Output is the guest's message,
	                 Err "handler returned N"); a trap (Err is *TrapError:
	                 unreachable, out-of-bounds access, call stack exhausted at
	                 Config.MaxWasmStack, a bad pointer passed to a host function,
	                 ...); proc_exit(N), N≠0 (Err "exit status N"); output over
	                 Limits.MaxOutput (Err is ErrOutputTooLarge, "output exceeds
	                 limit"); the caller's ctx cancelled (Err wraps
	                 context.Canceled); a panic anywhere, e.g. in a Host
	                 (recovered, never propagated); Run on a closed Engine
	                 (ErrClosed)
	timeout          the deadline passed while the guest ran (epoch callback) or
	                 while it waited in a host function or poll_oneoff; also the
	                 caller's ctx deadline. Err wraps context.DeadlineExceeded.
	                 Stopped within one EpochTick of the deadline when the guest
	                 is in wasm; a Host must honour its ctx for the same to hold
	                 in host calls
	interrupted      the caller's ctx was cancelled with ErrInterrupted as its
	                 cause (the node is stopping), in wasm, in a host function
	                 or waiting for a run token; Err wraps ErrInterrupted
	memory_exceeded  the module's initial memory (a snapshot's: its memory after
	                 _initialize) is already over the limit; or
	                 the call failed (trap, non-zero return, non-zero exit) and
	                 a memory.grow was refused during it (the grow guard), or
	                 linear memory was within a sixteenth of the limit, or the
	                 guest wrote an error-level line (stderr or log level 3)
	                 containing "out of memory"

wasmtime's store limiter, as wasmtime-go exposes it, refuses a memory.grow
silently (it returns -1 to the guest) and reports nothing to the host. So
every module is rewritten at Load so that a refused grow is recorded in a
global the host reads after a failed call (growguard.go). A module the
rewrite cannot decode runs unguarded; for it the rule is a heuristic: memory
close to full catches a guest that grew until refused, the "out of memory"
line a runtime that asked for one large block (Go prints "fatal error: out of
memory", then exits) while memory was still small. Either way a call that
fails for another reason after a refused grow, or while memory happens to be
full, is reported as memory_exceeded too.

MemoryPeak is the size of linear memory when the call ended; memory only
grows, so that is its high-water mark.

# Logs

aerodb.log lines and lines written to fd 1 (info) and fd 2 (error) share the
caps Limits.MaxLogLines and Limits.MaxLogBytes; lines past either are counted
in Result.LogsDropped. An unterminated line is logged when it reaches 64 KiB
or when the call ends.
*/
package engine
