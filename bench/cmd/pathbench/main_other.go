//go:build !linux

// Command pathbench needs Linux (network namespaces, TUN devices).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "pathbench: Linux only (network namespaces and TUN devices)")
	os.Exit(2)
}
