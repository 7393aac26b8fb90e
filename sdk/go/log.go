package aerofn

import "fmt"

// Level is a log line's severity, numbered as the log import expects.
type Level int32

const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	default:
		// The host treats unknown levels as info too.
		return "info"
	}
}

// Log writes one line to the invocation's log. The host keeps at most 1,000
// lines or 1 MiB per call and drops (but counts) the rest. Standard output
// and standard error also become log lines, at info and error level, so
// fmt.Println and the log package work too.
func Log(level Level, msg string) { host.log(level, msg) }

// Logf formats its arguments as fmt.Sprintf does and logs the line.
func Logf(level Level, format string, args ...any) {
	host.log(level, fmt.Sprintf(format, args...))
}

// Debug logs msg at debug level.
func Debug(msg string) { host.log(LevelDebug, msg) }

// Info logs msg at info level.
func Info(msg string) { host.log(LevelInfo, msg) }

// Warn logs msg at warn level.
func Warn(msg string) { host.log(LevelWarn, msg) }

// Error logs msg at error level. It does not fail the call: return an error
// from the handler for that.
func Error(msg string) { host.log(LevelError, msg) }

// Env returns a variable from the function's whitelist (secrets included).
// ok is false when the key is not whitelisted or not set; the process
// environment (os.Getenv) is always empty under aerofn.
func Env(key string) (value string, ok bool) { return host.env(key) }
