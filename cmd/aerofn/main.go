// Command aerofn runs and manages AeroDB Functions.
package main

import (
	"context"
	"os"

	"github.com/aerodb/aerofn/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
