// Command goinitenv reads an environment variable during init, so
// it cannot be pre-initialised: the engine must fall back to running
// _initialize on every call, where the variable is the call's.
package main

import aerofn "github.com/aerodb/aerofn/sdk/go"

var key, _ = aerofn.Env("KEY")

func init() {
	aerofn.Handle(func(aerofn.Event) (any, error) { return key, nil })
}

func main() {}
