//go:build wasip1

package main

import "unsafe"

// The aerodb imports of ABI v1 (docs/ABI.md), used raw: the runtime passes
// JSON through to JavaScript, which decodes it itself.

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

//go:wasmexport handler
func handler() int32 {
	out, ok := invoke(readInput())
	aerodbOutput(unsafe.Pointer(unsafe.SliceData(out)), int32(len(out)))
	if !ok {
		return 1
	}
	return 0
}

func readInput() []byte {
	n := aerodbInputLen()
	if n <= 0 {
		return nil
	}
	buf := make([]byte, n)
	return buf[:aerodbInputRead(unsafe.Pointer(&buf[0]), n)]
}

func hostLog(level int32, msg string) {
	aerodbLog(level, unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

func hostEnv(key string) (string, bool) {
	n := aerodbEnv(unsafe.Pointer(unsafe.StringData(key)), int32(len(key)))
	if n < 0 {
		return "", false
	}
	return string(readReply(n)), true
}

func hostDBQuery(req string) string {
	return string(readReply(aerodbDBQuery(unsafe.Pointer(unsafe.StringData(req)), int32(len(req)))))
}

func hostHTTPFetch(req string) string {
	return string(readReply(aerodbHTTPFetch(unsafe.Pointer(unsafe.StringData(req)), int32(len(req)))))
}

func readReply(n int32) []byte {
	if n <= 0 {
		return nil
	}
	buf := make([]byte, n)
	return buf[:aerodbReplyRead(unsafe.Pointer(&buf[0]), n)]
}
