package aerofn

// hostABI is the boundary to the aerofn host (docs/ABI.md). A wasip1 build
// talks to the aerodb imports; other builds get a stand-in so code using the
// SDK compiles, vets and unit-tests on the build machine; the SDK's tests
// swap in a fake.
type hostABI interface {
	// input returns the event JSON for this call.
	input() []byte
	// setOutput sets the call's result or error message.
	setOutput(b []byte)
	log(level Level, msg string)
	env(key string) (string, bool)
	// dbQuery and httpFetch return the host's JSON reply.
	dbQuery(req []byte) []byte
	httpFetch(req []byte) []byte
}

var host hostABI = platformHost{}
