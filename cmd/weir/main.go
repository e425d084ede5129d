// Command weir is an Envoy xDS control plane: it serves Istio-style traffic config to
// Envoy sidecars and gateways over ADS.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `weir — an Envoy xDS control plane

Usage:
  weir serve    [flags]   serve xDS from a directory of YAML
  weir validate DIR       check a directory of YAML and print every problem
  weir proxy-config TYPE NODE_ID
                          what weir serves one proxy (clusters, endpoints, listeners,
                          routes or all), from a running weir's admin API
  weir rollout COMMAND    list, get (-watch), promote, abort, pause, resume or
                          set-weight rollouts of a running weir
  weir version            print the version

Run 'weir serve -h' for the serve flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "validate":
		var failed bool
		failed, err = validate(os.Args[2:], os.Stdout)
		if err == nil && failed {
			os.Exit(1)
		}
	case "proxy-config", "pc":
		err = proxyConfig(os.Args[2:])
	case "rollout", "rollouts":
		err = rolloutCmd(os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("weir", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "weir: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir:", err)
		os.Exit(1)
	}
}
