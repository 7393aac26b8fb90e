//go:build wasip1

package aerofn

import "unsafe"

// The aerodb imports of ABI v1. Pointers are offsets into the module's own
// linear memory; Go's collector does not move objects, and a pointer argument
// keeps its object alive for the duration of the call.

//go:wasmimport aerodb input_len
func aerodbInputLen() int32

//go:wasmimport aerodb input_read
func aerodbInputRead(ptr unsafe.Pointer, n int32) int32

//go:wasmimport aerodb output
func aerodbOutput(ptr unsafe.Pointer, n int32) int32

//go:wasmimport aerodb log
func aerodbLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport aerodb env
func aerodbEnv(keyPtr unsafe.Pointer, keyLen int32) int32

//go:wasmimport aerodb db_query
func aerodbDBQuery(reqPtr unsafe.Pointer, reqLen int32) int32

//go:wasmimport aerodb http_fetch
func aerodbHTTPFetch(reqPtr unsafe.Pointer, reqLen int32) int32

//go:wasmimport aerodb reply_read
func aerodbReplyRead(ptr unsafe.Pointer, n int32) int32

// handler is the module's entry point: decode the event, run the registered
// handler, set the output. 0 is success, 1 failure (docs/ABI.md).
//
//go:wasmexport handler
func handler() int32 {
	out, ok := invoke(registered, host.input())
	host.setOutput(out)
	if !ok {
		return 1
	}
	return 0
}

type platformHost struct{}

// inputBuf takes the event of a call when it fits. It is made during init,
// so it is part of the snapshot every call starts from (docs/ABI.md): a
// call reads its event without allocating, and finds no earlier call's
// event in it.
var inputBuf = make([]byte, 8<<10)

func (platformHost) input() []byte {
	n := aerodbInputLen()
	if n <= 0 {
		return nil
	}
	buf := inputBuf
	if int(n) > len(buf) {
		buf = make([]byte, n)
	}
	got := aerodbInputRead(unsafe.Pointer(&buf[0]), n)
	return buf[:got:got]
}

func (platformHost) setOutput(b []byte) {
	aerodbOutput(unsafe.Pointer(unsafe.SliceData(b)), int32(len(b)))
}

func (platformHost) log(level Level, msg string) {
	aerodbLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

func (platformHost) env(key string) (string, bool) {
	n := aerodbEnv(unsafe.Pointer(unsafe.StringData(key)), int32(len(key)))
	if n < 0 {
		return "", false
	}
	b := readReply(n)
	// b is fresh and never written again, so the string can share it.
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

func (platformHost) dbQuery(req []byte) []byte {
	return readReply(aerodbDBQuery(unsafe.Pointer(unsafe.SliceData(req)), int32(len(req))))
}

func (platformHost) httpFetch(req []byte) []byte {
	return readReply(aerodbHTTPFetch(unsafe.Pointer(unsafe.SliceData(req)), int32(len(req))))
}

// readReply copies the pending reply of length n into a new slice.
func readReply(n int32) []byte {
	if n <= 0 {
		return nil
	}
	buf := make([]byte, n)
	got := aerodbReplyRead(unsafe.Pointer(&buf[0]), n)
	return buf[:got]
}
