// Command backend runs one or more test backends that answer every request with the
// version that served it (body and x-weir-version header), for demos and the examples.
//
//	go run ./e2e/cmd/backend 127.0.0.11:9080=v1 127.0.0.12:9080=v2
//	go run ./e2e/cmd/backend -fail-status 503 -fail-every 1 127.0.0.13:9080=v3
//
// At run time: curl -X POST 'http://127.0.0.13:9080/_weir/behavior?fail_every=0'
// (also /_weir/stats and /_weir/reset). It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

func main() {
	failStatus := flag.Int("fail-status", 0, "status of injected failures (0: no failures)")
	failEvery := flag.Int("fail-every", 1, "fail every k-th request when -fail-status is set")
	delay := flag.Duration("delay", 0, "delay added to every answer")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: backend [flags] ADDR=VERSION...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	behavior := backend.Behavior{Delay: *delay}
	if *failStatus != 0 {
		behavior.FailStatus, behavior.FailEvery = *failStatus, *failEvery
	}

	var running []*backend.Backend
	for _, arg := range flag.Args() {
		addr, version, ok := strings.Cut(arg, "=")
		if !ok || addr == "" || version == "" {
			log.Fatalf("backend: %q: want ADDR=VERSION, e.g. 127.0.0.11:9080=v1", arg)
		}
		b, err := backend.Start(addr, version, "")
		if err != nil {
			log.Fatal(err)
		}
		b.SetBehavior(behavior)
		running = append(running, b)
		log.Printf("backend %s listening on %s (HTTP/1.1 and h2c)", version, b.Addr())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()

	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, b := range running {
		_ = b.Shutdown(shutdown)
		s := b.Stats()
		log.Printf("backend %s served %d requests (%d failed on purpose)", s.Version, s.Requests, s.Failed)
	}
}
