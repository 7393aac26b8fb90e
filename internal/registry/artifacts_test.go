package registry

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/zstd"

	"github.com/aerodb/aerofn/internal/db/dbtest"
)

func artifactStore(t *testing.T) (*Artifacts, *pgxpool.Pool) {
	t.Helper()
	pool, _ := dbtest.Migrated(t, 4)
	return NewArtifacts(pool, "artifacts-test-secrets-key"), pool
}

// fakeArtifact looks like an artifact as far as compression goes: an ELF
// header, some incompressible "code" and a long run of zeros.
func fakeArtifact(n int) []byte {
	b := make([]byte, n)
	copy(b, "\x7fELF")
	r := rand.New(rand.NewPCG(1, 2))
	for i := 4; i < n/4; i++ {
		b[i] = byte(r.UintN(256))
	}
	return b
}

const (
	testHash = "1537201fc9999b0ec0568e804df21a93276db567d68621d26b75b85d6b0060ab"
	testFP   = "0ec0568e804df21a93276db567d68621d26b75b85d6b0060ab1537201fc9999b"
)

// Artifacts are stored compressed and come back byte for byte; the row
// records the artifact's own size.
func TestArtifactCompressionRoundTrip(t *testing.T) {
	a, pool := artifactStore(t)
	ctx := context.Background()
	art := fakeArtifact(4 << 20)
	if err := a.Put(ctx, testHash, testFP, art); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	var size int
	if err := pool.QueryRow(ctx, `SELECT bytes, size FROM aerofn.artifacts WHERE wasm_hash = $1`, testHash).Scan(&stored, &size); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stored, zstdMagic) || len(stored) > len(art)/2 || size != len(art) {
		t.Fatalf("stored %d bytes (prefix %x) for a %d-byte artifact, size column %d: want it compressed", len(stored), stored[:4], len(art), size)
	}
	got, err := a.Get(ctx, testHash, testFP)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, art) {
		t.Fatalf("round trip changed the artifact (%d bytes back, %d put)", len(got), len(art))
	}
	if got, err := a.Get(ctx, testHash, testHash); got != nil || err != nil {
		t.Fatalf("other fingerprint: %d bytes, %v", len(got), err)
	}
}

// A large artifact is compressed as one frame per core, each at once, and
// comes back whole.
func TestArtifactCompressedInFrames(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	a, _ := artifactStore(t)
	ctx := context.Background()
	art := fakeArtifact(3*compressChunk + 12345)
	stored := compress(art, true)
	var h zstd.Header
	if err := h.Decode(stored); err != nil {
		t.Fatal(err)
	}
	if !h.HasFCS || h.FrameContentSize != uint64(len(art)+1)/2 {
		t.Fatalf("first frame holds %d bytes (known: %v), want half of the %d", h.FrameContentSize, h.HasFCS, len(art))
	}
	if err := a.Put(ctx, testHash, testFP, art); err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(ctx, testHash, testFP)
	if err != nil || !bytes.Equal(got, art) {
		t.Fatalf("round trip: %d bytes back of %d, %v", len(got), len(art), err)
	}
	// In the background, one frame on one core.
	if err := h.Decode(compress(art, false)); err != nil || h.FrameContentSize != uint64(len(art)) {
		t.Fatalf("background: first frame holds %d of %d bytes (%v)", h.FrameContentSize, len(art), err)
	}
	if err := a.PutBackground(ctx, testHash, testFP, art); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, testHash, testFP); err != nil || !bytes.Equal(got, art) {
		t.Fatalf("background round trip: %d bytes back of %d, %v", len(got), len(art), err)
	}
}

// A row written before artifacts were compressed (the bytes as they are,
// the MAC over them) is still read.
func TestArtifactUncompressedRowStillRead(t *testing.T) {
	a, pool := artifactStore(t)
	ctx := context.Background()
	art := fakeArtifact(64 << 10)
	if _, err := pool.Exec(ctx, `INSERT INTO aerofn.artifacts (wasm_hash, fingerprint, bytes, mac, size) VALUES ($1, $2, $3, $4, $5)`,
		testHash, testFP, art, a.mac(testHash, testFP, art), len(art)); err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(ctx, testHash, testFP)
	if err != nil || !bytes.Equal(got, art) {
		t.Fatalf("uncompressed row: %d bytes, %v", len(got), err)
	}
}

// Corruption is refused with ErrBadArtifact, never decompressed into
// something else: bytes changed behind the nodes' back fail the MAC, and a
// signed row whose compressed data is cut short or whose size is wrong
// fails decompression.
func TestArtifactCorruptionRefused(t *testing.T) {
	a, pool := artifactStore(t)
	ctx := context.Background()
	art := fakeArtifact(1 << 20)
	if err := a.Put(ctx, testHash, testFP, art); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := pool.QueryRow(ctx, `SELECT bytes FROM aerofn.artifacts WHERE wasm_hash = $1`, testHash).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	signed := func(b []byte, size int) func() {
		return func() {
			if _, err := pool.Exec(ctx, `UPDATE aerofn.artifacts SET bytes = $2, mac = $3, size = $4 WHERE wasm_hash = $1`,
				testHash, b, a.mac(testHash, testFP, b), size); err != nil {
				t.Fatal(err)
			}
		}
	}
	flipped := bytes.Clone(stored)
	flipped[len(flipped)/2] ^= 0xff
	cases := map[string]func(){
		"tampered": func() {
			if _, err := pool.Exec(ctx, `UPDATE aerofn.artifacts SET bytes = $2 WHERE wasm_hash = $1`, testHash, flipped); err != nil {
				t.Fatal(err)
			}
		},
		"truncated, signed":    signed(stored[:len(stored)/2], len(art)),
		"corrupt data, signed": signed(flipped, len(art)),
		"wrong size, signed":   signed(stored, len(art)-1),
		"huge size, signed":    signed(stored, MaxArtifactBytes+1),
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			signed(stored, len(art))()
			spoil()
			got, err := a.Get(ctx, testHash, testFP)
			if !errors.Is(err, ErrBadArtifact) || got != nil {
				t.Fatalf("got %d bytes, err %v; want ErrBadArtifact", len(got), err)
			}
		})
	}
}
