// Package load drives an xDS server with many Envoy-like ADS streams and measures how
// fast each gets its first full config and how fast a config change converges.
package load

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config sizes and shapes one load run.
type Config struct {
	Target         string        // host:port of the ADS server; loopback only
	Streams        int           // number of ADS streams (simulated Envoys)
	Classes        int           // stream i gets outbound_port 20000 + i%Classes
	Delta          bool          // incremental xDS instead of state of the world
	Ramp           float64       // streams opened per second; 0 means no limit
	Duration       time.Duration // bound on the whole run
	WatchChange    bool          // after all streams are up, wait for an RDS change
	StreamsPerConn int           // streams sharing one gRPC connection
	Namespace      string        // node metadata namespace
	IDPrefix       string        // node ids are IDPrefix + index

	// OnAllUp, if set, is called once every stream has its first full config, before
	// the run waits for a change; tests use it to trigger the change.
	OnAllUp func()

	// ackFilter, when set and returning false, makes a stream skip the ACK of a type:
	// it lets tests prove that a silent stream is reported.
	ackFilter func(stream int, typeURL string) bool
}

// ErrNotLoopback is returned for a target outside 127.0.0.0/8 and ::1: this tool opens
// thousands of streams and must never be pointed at a shared control plane by mistake.
var ErrNotLoopback = errors.New("target must be a loopback address (127.0.0.0/8 or ::1)")

// withDefaults fills unset fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Target == "" {
		c.Target = "127.0.0.1:18000"
	}
	if err := checkLoopback(c.Target); err != nil {
		return c, err
	}
	if c.Streams < 1 {
		return c, fmt.Errorf("streams must be at least 1, got %d", c.Streams)
	}
	if c.Classes < 1 {
		c.Classes = 1
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.StreamsPerConn < 1 {
		c.StreamsPerConn = 100
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.IDPrefix == "" {
		c.IDPrefix = "load-"
	}
	return c, nil
}

func checkLoopback(target string) error {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("target %q: %w", target, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("target %q: %w", target, ErrNotLoopback)
	}
	return nil
}
