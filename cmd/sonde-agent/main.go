// Command sonde-agent is Sonde's agent. This release only prints its version;
// the full agent follows in the next releases.
package main

import (
	"fmt"
	"os"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println("sonde-agent", version)
		return
	}
	fmt.Fprintf(os.Stderr, "sonde-agent %s: only \"version\" is available in this release\n", version)
	os.Exit(2)
}
