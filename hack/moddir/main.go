// Command moddir prints the folder of a Go module required by a go.mod, downloading the module first if the
// module cache lacks it. hack/ensure-bins.sh uses it to find Kueue's main package on a fresh machine.
//
//	go run ./hack/moddir [-C folder] module
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/aifactory-eu/aifactory-operator/internal/gomod"
)

func main() {
	dir := flag.String("C", ".", "The folder whose go.mod chooses the module's version.")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: moddir [-C folder] module")
		os.Exit(2)
	}
	d, err := gomod.Dir(context.Background(), *dir, flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := fmt.Fprintln(os.Stdout, d); err != nil {
		os.Exit(1)
	}
}
