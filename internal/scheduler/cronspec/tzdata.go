package cronspec

// Embedded zone data is a fallback only: the host's zoneinfo is used when present.
// Without it a minimal container would reject every timezone but UTC.
import _ "time/tzdata"
