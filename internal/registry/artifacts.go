package registry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/zstd"
)

// ErrBadArtifact: a stored artifact's MAC does not match (it was written
// without the key, or changed since).
var ErrBadArtifact = errors.New("stored artifact fails its integrity check")

// Artifacts stores compiled modules (engine artifacts) so that a module is
// compiled once for the whole cluster: keyed by the module's hash and the
// fingerprint of the engine that compiled it (engine.Engine.Fingerprint).
//
// wasmtime runs an artifact's machine code as it is, so whoever could
// write this table could run code on every node. Each row therefore
// carries an HMAC-SHA256 over fingerprint, hash and bytes, under a key
// derived from the secrets key (which nodes have and the database does
// not); Get refuses a row whose MAC does not match. The table grants
// nothing to PUBLIC, so function roles cannot read or write it.
type Artifacts struct {
	pool *pgxpool.Pool
	key  []byte
}

// NewArtifacts returns the store; secretsKey is the node's secrets key.
func NewArtifacts(pool *pgxpool.Pool, secretsKey string) *Artifacts {
	k := sha256.Sum256([]byte("aerofn artifact mac\x00" + secretsKey))
	return &Artifacts{pool: pool, key: k[:]}
}

func (a *Artifacts) mac(hash, fingerprint string, art []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(fingerprint))
	m.Write([]byte{0})
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write(art)
	return m.Sum(nil)
}

// Artifacts are stored compressed with zstd at its fastest level: a Go
// guest's artifact (machine code and a mostly-zero memory image) shrinks
// from 16-17 MB to about 7 MB, which is what PostgreSQL writes (WAL and
// TOAST) at deploy and reads back for every other node, and what the first
// call on those nodes waits for. The MAC covers the stored bytes, so a row
// is authenticated before it is decompressed. A row whose bytes are not a
// zstd frame (written by an aerofn before compression) is used as it is:
// an artifact is an ELF file, which never starts with zstd's magic number.
var (
	zstdMagic   = []byte{0x28, 0xb5, 0x2f, 0xfd}
	artEncoder  = mustZstdEncoder()
	artDecoder  = mustZstdDecoder()
	errTooLarge = errors.New("artifact decompresses past its limit")
)

// MaxArtifactBytes bounds an artifact once decompressed; a larger one is
// refused (it would have to be a row written with the key, so this only
// bounds what a bug could make a node allocate).
const MaxArtifactBytes = 1 << 30

func mustZstdEncoder() *zstd.Encoder {
	// Each encoder keeps its history buffer once it has compressed a large
	// input, for the life of the process: the lower-memory mode and at most
	// maxFrames of them bound that.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), maxFrames)))
	if err != nil {
		panic(err)
	}
	return enc
}

// compressChunk is the least input compress gives a core of its own, and
// maxFrames the most cores it takes.
const (
	compressChunk = 4 << 20
	maxFrames     = 4
)

// compress is art as zstd frames: one per core for a large artifact
// (a Go guest's cheap artifact is 20-25 MB), compressed at once, since a
// deploy waits for it. Frames are independent, so the ratio is what one
// frame's would be, less a window's worth of matches at each cut; Get's
// DecodeAll reads the frames in order.
func compress(art []byte, parallel bool) []byte {
	n := min(runtime.GOMAXPROCS(0), maxFrames, len(art)/compressChunk)
	if !parallel {
		n = 1
	}
	if n <= 1 {
		return artEncoder.EncodeAll(art, make([]byte, 0, len(art)/2))
	}
	size := (len(art) + n - 1) / n
	parts := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range parts {
		chunk := art[i*size : min((i+1)*size, len(art))]
		wg.Go(func() { parts[i] = artEncoder.EncodeAll(chunk, make([]byte, 0, len(chunk)/2)) })
	}
	wg.Wait()
	return slices.Concat(parts...)
}

func mustZstdDecoder() *zstd.Decoder {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxArtifactBytes))
	if err != nil {
		panic(err)
	}
	return dec
}

// Get returns the artifact of module hash for engines with fingerprint,
// or nil when there is none.
func (a *Artifacts) Get(ctx context.Context, hash, fingerprint string) ([]byte, error) {
	var stored, mac []byte
	var size int
	err := a.pool.QueryRow(ctx, `SELECT bytes, mac, size FROM aerofn.artifacts WHERE wasm_hash = $1 AND fingerprint = $2`,
		hash, fingerprint).Scan(&stored, &mac, &size)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading artifact of %s: %w", hash, err)
	}
	if !hmac.Equal(mac, a.mac(hash, fingerprint, stored)) {
		return nil, fmt.Errorf("%w: module %s, engine %s", ErrBadArtifact, hash, fingerprint)
	}
	if !bytes.HasPrefix(stored, zstdMagic) {
		return stored, nil
	}
	if size <= 0 || size > MaxArtifactBytes {
		return nil, fmt.Errorf("%w: module %s, engine %s: size %d", ErrBadArtifact, hash, fingerprint, size)
	}
	art, err := artDecoder.DecodeAll(stored, make([]byte, 0, size))
	if err == nil && len(art) != size {
		err = fmt.Errorf("%d bytes, recorded as %d", len(art), size)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: module %s, engine %s: decompressing: %v", ErrBadArtifact, hash, fingerprint, err)
	}
	return art, nil
}

// Has reports whether a usable-looking artifact is stored (its MAC is not
// checked; Put replaces a bad one).
func (a *Artifacts) Has(ctx context.Context, hash, fingerprint string) (bool, error) {
	var ok bool
	err := a.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM aerofn.artifacts WHERE wasm_hash = $1 AND fingerprint = $2)`,
		hash, fingerprint).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking up artifact of %s: %w", hash, err)
	}
	return ok, nil
}

// Put stores (or replaces) the artifact of module hash. A deploy calls it
// before the version is committed, so the module need not be stored yet.
func (a *Artifacts) Put(ctx context.Context, hash, fingerprint string, art []byte) error {
	return a.put(ctx, hash, fingerprint, art, true)
}

// PutBackground is Put for work no request waits for (the optimised
// compile's artifact): compressed on one core, leaving the others to calls.
func (a *Artifacts) PutBackground(ctx context.Context, hash, fingerprint string, art []byte) error {
	return a.put(ctx, hash, fingerprint, art, false)
}

func (a *Artifacts) put(ctx context.Context, hash, fingerprint string, art []byte, parallel bool) error {
	if len(art) > MaxArtifactBytes {
		return fmt.Errorf("storing artifact of %s: %w (%d bytes)", hash, errTooLarge, len(art))
	}
	stored := compress(art, parallel)
	// Stored and announced in one statement (it commits at once): see
	// ArtifactNotice.
	_, err := a.pool.Exec(ctx, `WITH put AS (
			INSERT INTO aerofn.artifacts (wasm_hash, fingerprint, bytes, mac, size) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (wasm_hash, fingerprint) DO UPDATE SET bytes = excluded.bytes, mac = excluded.mac, size = excluded.size, created_at = now()
			RETURNING 1)
		SELECT pg_notify($6, $7) FROM put`,
		hash, fingerprint, stored, a.mac(hash, fingerprint, stored), len(art), ChangeChannel, artifactNoticePrefix+hash)
	if err != nil {
		return fmt.Errorf("storing artifact of %s: %w", hash, err)
	}
	return nil
}

// artifactNoticePrefix starts the ChangeChannel payload that announces a
// stored artifact; a function name never contains a space.
const artifactNoticePrefix = "artifact "

// ArtifactNotice reports whether a ChangeChannel payload announces a stored
// artifact, and of which module. Put sends one as soon as the artifact is
// stored, before the deploy that stored it commits its version, so other
// nodes can fetch it while the deploy finishes instead of after it.
func ArtifactNotice(payload string) (hash string, ok bool) {
	return strings.CutPrefix(payload, artifactNoticePrefix)
}
