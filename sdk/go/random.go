package aerofn

import (
	crand "crypto/rand"
	"math/rand/v2"
)

// Rand returns a generator seeded from the host's random source on this
// call. aerofn snapshots a Go guest after its initialisation (docs/ABI.md),
// so the Go runtime's own random state, which the top-level functions of
// math/rand and math/rand/v2 use, is the same at the start of every call of
// a version; use Rand (or crypto/rand) for values that must differ between
// calls.
func Rand() *rand.Rand {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("aerofn: reading random seed: " + err.Error())
	}
	return rand.New(rand.NewChaCha8(seed))
}
