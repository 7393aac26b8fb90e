//go:build !wasip1

package aerofn

import "embed"

// Source is this module's own source: go.mod, README.md and the .go files
// (tests included). The aerofn command embeds it through this variable and
// writes a copy into every project that `aerofn new` creates, so a function
// builds with nothing but the Go toolchain, offline and outside the aerofn
// repository. It exists only off wasip1: a function's module never holds it.
//
//go:embed go.mod README.md *.go
var Source embed.FS
