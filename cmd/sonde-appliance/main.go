// Command sonde-appliance is Sonde's appliance. This release only prints its version;
// the full appliance follows in the next releases.
package main

import (
	"fmt"
	"os"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println("sonde-appliance", version)
		return
	}
	fmt.Fprintf(os.Stderr, "sonde-appliance %s: only \"version\" is available in this release\n", version)
	os.Exit(2)
}
