package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// bootstrapXDSPort is the weir xDS port written in envoy-configs/*.yaml.
const bootstrapXDSPort = "port_value: 18000"

// EnvoyOptions says which proxy to start. Zero values take the bootstrap's own.
type EnvoyOptions struct {
	// Bootstrap is a file in envoy-configs/ (default sidecar.yaml).
	Bootstrap string
	// NodeID defaults to sidecar-N / gateway-N, unique within the test.
	NodeID    string
	Cluster   string // node.cluster, the workload name
	Namespace string
	Labels    map[string]string
	// NoWait returns once the admin port answers, without waiting for the listener (for
	// an Envoy started before weir).
	NoWait bool
	// Delta makes Envoy speak incremental (delta) xDS instead of state-of-the-world.
	Delta bool
	// StatsFlush overrides how often Envoy sends its stats to weir's metrics service.
	StatsFlush time.Duration
	// ListenerPorts maps a gateway's Gateway server ports to the loopback ports it binds
	// (node metadata listener_ports); a gateway then binds 127.0.0.1.
	ListenerPorts map[int]int
	// Locality replaces the bootstrap's node.locality (local/local-a) when set.
	Locality Locality
}

// Locality is where a proxy runs: node.locality.
type Locality struct {
	Region, Zone, SubZone string
}

// Envoy is a real Envoy process started from a checked-in bootstrap.
type Envoy struct {
	*process
	env          *Env
	NodeID       string
	AdminPort    int
	OutboundPort int // 0 for a gateway
	opts         EnvoyOptions
}

// StartEnvoy starts Envoy from envoy-configs/<Bootstrap>, pointed at the Env's weir, with
// its own node id, admin port and outbound port, and waits for its listener (unless
// NoWait).
//
// Node identity and ports go in through --config-yaml. The xDS address cannot: Envoy
// merges --config-yaml into the bootstrap with proto MergeFrom, which appends to repeated
// fields, so a second weir-xds cluster would be a duplicate. The harness therefore copies
// the bootstrap with the xDS port replaced (the one line that says port_value: 18000).
func (e *Env) StartEnvoy(opts EnvoyOptions) *Envoy {
	e.t.Helper()
	if opts.Bootstrap == "" {
		opts.Bootstrap = "sidecar.yaml"
	}
	role := strings.TrimSuffix(opts.Bootstrap, ".yaml")
	e.mu.Lock()
	n := len(e.envoys) + 1
	e.mu.Unlock()
	if opts.NodeID == "" {
		opts.NodeID = fmt.Sprintf("%s-%d", role, n)
	}
	v := &Envoy{env: e, NodeID: opts.NodeID, AdminPort: FreePort(e.t, "127.0.0.1"), opts: opts}
	if role == "sidecar" {
		v.OutboundPort = FreePort(e.t, "127.0.0.1")
	}

	bootstrap := e.bootstrapFor(opts.Bootstrap, opts.NodeID)
	override, err := json.Marshal(v.override())
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	args := []string{
		"-c", bootstrap,
		"--config-yaml", string(override),
		"--base-id", fmt.Sprint(v.AdminPort), // unique among running Envoys: the port is ours
		"--concurrency", "1",
		"--log-level", "info",
		"--drain-time-s", "1",
	}
	p, err := startProcess("envoy "+opts.NodeID, e.logPath("envoy-"+opts.NodeID+".log"), os.Environ(), EnvoyBinary(e.t), args...)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	v.process = p
	e.mu.Lock()
	e.envoys = append(e.envoys, v)
	e.mu.Unlock()

	v.waitAdmin(e.t)
	if !opts.NoWait {
		v.WaitReady(e.t)
	}
	return v
}

// bootstrapFor copies envoy-configs/<name> with weir's xDS port.
func (e *Env) bootstrapFor(name, nodeID string) string {
	e.t.Helper()
	root, err := RepoRoot()
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	data, err := os.ReadFile(filepath.Join(root, "envoy-configs", name))
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	if c := strings.Count(string(data), bootstrapXDSPort); c != 1 {
		e.t.Fatalf("envoy-configs/%s: want exactly one %q (weir's xDS port), found %d", name, bootstrapXDSPort, c)
	}
	out := strings.Replace(string(data), bootstrapXDSPort, fmt.Sprintf("port_value: %d", e.XDSPort), 1)
	path := e.logPath("bootstrap-" + nodeID + ".yaml")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		e.t.Fatalf("%v", err)
	}
	return path
}

// override is the --config-yaml document: node identity and ports.
func (v *Envoy) override() map[string]any {
	meta := map[string]any{}
	if v.opts.Namespace != "" {
		meta["namespace"] = v.opts.Namespace
	}
	if v.opts.Labels != nil {
		meta["labels"] = v.opts.Labels
	}
	if v.OutboundPort != 0 {
		meta["outbound_port"] = v.OutboundPort
	}
	if len(v.opts.ListenerPorts) > 0 {
		ports := map[string]int{}
		for from, to := range v.opts.ListenerPorts {
			ports[fmt.Sprint(from)] = to
		}
		meta["listener_address"] = "127.0.0.1"
		meta["listener_ports"] = ports
	}
	node := map[string]any{"id": v.NodeID, "metadata": meta}
	if v.opts.Cluster != "" {
		node["cluster"] = v.opts.Cluster
	}
	if l := v.opts.Locality; l != (Locality{}) {
		// --config-yaml merges field by field: an empty field keeps the bootstrap's value.
		node["locality"] = map[string]any{"region": l.Region, "zone": l.Zone, "sub_zone": l.SubZone}
	}
	out := map[string]any{
		"node": node,
		"admin": map[string]any{"address": map[string]any{
			"socket_address": map[string]any{"address": "127.0.0.1", "port_value": v.AdminPort},
		}},
	}
	if v.opts.StatsFlush > 0 {
		out["stats_flush_interval"] = v.opts.StatsFlush.String()
	}
	if v.opts.Delta {
		out["dynamic_resources"] = map[string]any{"ads_config": map[string]any{"api_type": "DELTA_GRPC"}}
	}
	return out
}

func (v *Envoy) stop() {
	if err, killed := v.Terminate(stopTimeout); killed {
		v.env.t.Logf("envoy %s had to be killed (%v)", v.NodeID, err)
	}
}

// Admin fetches an admin path and returns the body; non-200 is an error.
func (v *Envoy) Admin(path string) (string, error) {
	return httpGet(fmt.Sprintf("http://127.0.0.1:%d", v.AdminPort), path, "envoy "+v.NodeID)
}

func (v *Envoy) waitAdmin(t TB) {
	t.Helper()
	ok := poll(startTimeout, 50*time.Millisecond, func() bool {
		if !v.Running() {
			return true
		}
		_, err := v.Admin("/server_info")
		return err == nil
	})
	if !v.Running() {
		t.Fatalf("envoy %s exited at start (%v); log:\n%s", v.NodeID, v.Err(), tailFile(v.LogPath, 40))
	}
	if !ok {
		t.Fatalf("envoy %s admin not up on port %d after %v", v.NodeID, v.AdminPort, startTimeout)
	}
}

// WaitReady waits until Envoy is initialized (/ready) and, for a sidecar, its outbound
// listener is active and accepts connections.
func (v *Envoy) WaitReady(t TB) {
	t.Helper()
	began := time.Now()
	ok := poll(convergeTimeout, 50*time.Millisecond, func() bool {
		if _, err := v.Admin("/ready"); err != nil {
			return false
		}
		if v.OutboundPort == 0 {
			return true
		}
		listeners, err := v.Admin("/listeners")
		if err != nil || !strings.Contains(listeners, fmt.Sprintf(":%d", v.OutboundPort)) {
			return false
		}
		conn, err := net.DialTimeout("tcp", v.OutboundAddr(), time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
	if !ok {
		t.Fatalf("envoy %s not ready (listener 127.0.0.1:%d) within %v", v.NodeID, v.OutboundPort, convergeTimeout)
	}
	t.Logf("envoy %s ready in %v (admin %d, outbound %d)", v.NodeID, time.Since(began).Round(time.Millisecond), v.AdminPort, v.OutboundPort)
}

// OutboundAddr is the sidecar's outbound HTTP listener.
func (v *Envoy) OutboundAddr() string { return fmt.Sprintf("127.0.0.1:%d", v.OutboundPort) }

// ListenerUp reports whether something accepts connections on the outbound port.
func (v *Envoy) ListenerUp() bool {
	conn, err := net.DialTimeout("tcp", v.OutboundAddr(), 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Stat reads one counter or gauge from /stats (-1 if absent).
func (v *Envoy) Stat(t TB, name string) int64 {
	t.Helper()
	body, err := v.Admin("/stats?filter=" + url.QueryEscape("^"+regexp.QuoteMeta(name)+"$"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, line := range strings.Split(body, "\n") {
		k, val, ok := strings.Cut(line, ": ")
		if ok && k == name {
			var n int64
			if _, err := fmt.Sscan(val, &n); err == nil {
				return n
			}
		}
	}
	return -1
}

// WaitConnected waits until Envoy's ADS stream to weir is up (or down, want=false).
func (v *Envoy) WaitConnected(t TB, want bool) {
	t.Helper()
	wantState := int64(0)
	if want {
		wantState = 1
	}
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		return v.Stat(t, "control_plane.connected_state") == wantState
	}) {
		t.Fatalf("envoy %s: control_plane.connected_state never became %d", v.NodeID, wantState)
	}
}
