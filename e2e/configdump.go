package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// ConfigDump is the dynamic part of an Envoy's /config_dump: what weir sent it.
type ConfigDump struct {
	Clusters  []Cluster
	Routes    []RouteConfig
	Listeners []json.RawMessage
	Endpoints []json.RawMessage

	// content is each resource (without version_info/last_updated) as canonical JSON,
	// for comparing two dumps.
	content []string
}

// RouteConfig is the part of an Envoy RouteConfiguration the tests read.
type RouteConfig struct {
	Name         string        `json:"name"`
	VirtualHosts []VirtualHost `json:"virtual_hosts"`
}

// VirtualHost is the part of an Envoy VirtualHost the tests read.
type VirtualHost struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	Routes  []Route  `json:"routes"`
}

// Route is the part of an Envoy Route the tests read.
type Route struct {
	Name  string          `json:"name"`
	Match json.RawMessage `json:"match"`
	Route *RouteAction    `json:"route"`
}

// RouteAction is the part of an Envoy RouteAction the tests read.
type RouteAction struct {
	Cluster          string `json:"cluster"`
	WeightedClusters *struct {
		Clusters []struct {
			Name   string `json:"name"`
			Weight int    `json:"weight"`
		} `json:"clusters"`
	} `json:"weighted_clusters"`
	Timeout     string       `json:"timeout"`
	RetryPolicy *RetryPolicy `json:"retry_policy"`
}

// RetryPolicy is an Envoy route retry policy.
type RetryPolicy struct {
	RetryOn       string `json:"retry_on"`
	NumRetries    *int   `json:"num_retries"`
	PerTryTimeout string `json:"per_try_timeout"`
}

// Cluster is the part of an Envoy Cluster the tests read.
type Cluster struct {
	Name             string            `json:"name"`
	ConnectTimeout   string            `json:"connect_timeout"`
	LbPolicy         string            `json:"lb_policy"`
	CircuitBreakers  *CircuitBreakers  `json:"circuit_breakers"`
	OutlierDetection *OutlierDetection `json:"outlier_detection"`
}

// CircuitBreakers holds per-priority thresholds.
type CircuitBreakers struct {
	Thresholds []Thresholds `json:"thresholds"`
}

// Thresholds is one priority's circuit breaker limits (nil: Envoy's default).
type Thresholds struct {
	Priority           string `json:"priority"`
	MaxConnections     *int   `json:"max_connections"`
	MaxPendingRequests *int   `json:"max_pending_requests"`
	MaxRequests        *int   `json:"max_requests"`
	MaxRetries         *int   `json:"max_retries"`
}

// OutlierDetection is the part of an Envoy OutlierDetection the tests read.
type OutlierDetection struct {
	Consecutive5xx            *int   `json:"consecutive_5xx"`
	ConsecutiveGatewayFailure *int   `json:"consecutive_gateway_failure"`
	Interval                  string `json:"interval"`
	BaseEjectionTime          string `json:"base_ejection_time"`
	MaxEjectionPercent        *int   `json:"max_ejection_percent"`
}

// DefaultThresholds returns the DEFAULT-priority circuit breaker thresholds, if any.
func (c Cluster) DefaultThresholds() (Thresholds, bool) {
	if c.CircuitBreakers == nil {
		return Thresholds{}, false
	}
	for _, th := range c.CircuitBreakers.Thresholds {
		if th.Priority == "" || th.Priority == "DEFAULT" {
			return th, true
		}
	}
	return Thresholds{}, false
}

// ClusterName is weir's (and Istio's) cluster naming: outbound|<port>|<subset>|<fqdn>.
func ClusterName(port int, subset, fqdn string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, fqdn)
}

// Cluster returns the named cluster.
func (d *ConfigDump) Cluster(name string) (Cluster, bool) {
	for _, c := range d.Clusters {
		if c.Name == name {
			return c, true
		}
	}
	return Cluster{}, false
}

// ClusterNames lists every dynamic cluster's name.
func (d *ConfigDump) ClusterNames() []string {
	var names []string
	for _, c := range d.Clusters {
		names = append(names, c.Name)
	}
	return names
}

// VirtualHost returns the first virtual host, in any route configuration, that serves
// exactly this domain.
func (d *ConfigDump) VirtualHost(domain string) (VirtualHost, bool) {
	for _, rc := range d.Routes {
		for _, vh := range rc.VirtualHosts {
			if slices.Contains(vh.Domains, domain) {
				return vh, true
			}
		}
	}
	return VirtualHost{}, false
}

// Weights returns each destination cluster's share of a route, in percent.
func (a *RouteAction) Weights() map[string]float64 {
	if a == nil {
		return nil
	}
	if a.Cluster != "" {
		return map[string]float64{a.Cluster: 100}
	}
	if a.WeightedClusters == nil {
		return nil
	}
	total := 0
	for _, c := range a.WeightedClusters.Clusters {
		total += c.Weight
	}
	out := map[string]float64{}
	for _, c := range a.WeightedClusters.Clusters {
		if total > 0 && c.Weight > 0 {
			out[c.Name] += 100 * float64(c.Weight) / float64(total)
		}
	}
	return out
}

// SameContent reports whether two dumps hold the same resources, ignoring versions and
// update times, and describes the first difference.
func (d *ConfigDump) SameContent(other *ConfigDump) (bool, string) {
	if slices.Equal(d.content, other.content) {
		return true, ""
	}
	for i := range min(len(d.content), len(other.content)) {
		if d.content[i] != other.content[i] {
			return false, fmt.Sprintf("resource %d differs:\n before: %s\n after:  %s",
				i, truncate(d.content[i], 3000), truncate(other.content[i], 3000))
		}
	}
	return false, fmt.Sprintf("%d resources before, %d after", len(d.content), len(other.content))
}

// ConfigDump reads the dynamic clusters, routes, listeners and endpoints Envoy holds.
func (v *Envoy) ConfigDump(t TB) *ConfigDump {
	t.Helper()
	d, err := v.configDump()
	if err != nil {
		t.Fatalf("envoy %s config_dump: %v", v.NodeID, err)
	}
	return d
}

// dumpSections maps a config_dump resource to the field holding each resource.
var dumpSections = []struct {
	resource string
	path     []string
}{
	{"dynamic_active_clusters", []string{"cluster"}},
	{"dynamic_route_configs", []string{"route_config"}},
	{"dynamic_listeners", []string{"active_state", "listener"}},
	{"dynamic_endpoint_configs", []string{"endpoint_config"}},
}

func (v *Envoy) configDump() (*ConfigDump, error) {
	d := &ConfigDump{}
	for _, sec := range dumpSections {
		path := "/config_dump?resource=" + sec.resource
		if sec.resource == "dynamic_endpoint_configs" {
			path += "&include_eds"
		}
		body, err := v.Admin(path)
		if err != nil {
			return nil, err
		}
		var dump struct {
			Configs []map[string]json.RawMessage `json:"configs"`
		}
		if err := json.Unmarshal([]byte(body), &dump); err != nil {
			return nil, fmt.Errorf("%s: %w", sec.resource, err)
		}
		var raws []json.RawMessage
		for _, cfg := range dump.Configs {
			raw, ok := dig(cfg, sec.path)
			if !ok {
				continue // e.g. a listener with only a warming state
			}
			raws = append(raws, raw)
		}
		if err := d.add(sec.resource, raws); err != nil {
			return nil, err
		}
	}
	sort.Strings(d.content)
	return d, nil
}

func (d *ConfigDump) add(resource string, raws []json.RawMessage) error {
	for _, raw := range raws {
		canon, err := canonicalJSON(raw)
		if err != nil {
			return err
		}
		d.content = append(d.content, resource+" "+canon)
		switch resource {
		case "dynamic_active_clusters":
			var c Cluster
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			d.Clusters = append(d.Clusters, c)
		case "dynamic_route_configs":
			var rc RouteConfig
			if err := json.Unmarshal(raw, &rc); err != nil {
				return fmt.Errorf("route config: %w", err)
			}
			d.Routes = append(d.Routes, rc)
		case "dynamic_listeners":
			d.Listeners = append(d.Listeners, raw)
		case "dynamic_endpoint_configs":
			d.Endpoints = append(d.Endpoints, raw)
		}
	}
	return nil
}

func dig(m map[string]json.RawMessage, path []string) (json.RawMessage, bool) {
	raw, ok := m[path[0]]
	if !ok {
		return nil, false
	}
	if len(path) == 1 {
		return raw, true
	}
	var next map[string]json.RawMessage
	if err := json.Unmarshal(raw, &next); err != nil {
		return nil, false
	}
	return dig(next, path[1:])
}

// canonicalJSON re-encodes JSON with sorted object keys.
func canonicalJSON(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	out, err := json.Marshal(v)
	return string(out), err
}

// rawConfigDump is the clusters and routes as Envoy prints them, for failure output.
func (v *Envoy) rawConfigDump() string {
	var b strings.Builder
	for _, res := range []string{"dynamic_active_clusters", "dynamic_route_configs"} {
		body, err := v.Admin("/config_dump?resource=" + res)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", res, err)
			continue
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", res, truncate(body, 30000))
	}
	return b.String()
}

// WaitRouteWeights waits until the last route of the virtual host serving domain sends
// traffic to clusters in the given percentages (absent clusters: 0%), and returns how
// long that took.
func (v *Envoy) WaitRouteWeights(t TB, domain string, want map[string]float64) time.Duration {
	t.Helper()
	began := time.Now()
	var got map[string]float64
	ok := poll(convergeTimeout, 20*time.Millisecond, func() bool {
		d, err := v.configDump()
		if err != nil {
			return false
		}
		vh, found := d.VirtualHost(domain)
		if !found || len(vh.Routes) == 0 {
			got = nil
			return false
		}
		got = vh.Routes[len(vh.Routes)-1].Route.Weights()
		return sameWeights(got, want)
	})
	if !ok {
		t.Fatalf("envoy %s: default route for %q never reached weights %v within %v; last seen %v",
			v.NodeID, domain, want, convergeTimeout, got)
	}
	took := time.Since(began)
	// config_dump shows the main thread's view; the worker gets the new route a moment
	// later. Let it settle so that no request measured afterwards sees the old split.
	time.Sleep(workerSettle)
	return took
}

// workerSettle is how long a route change takes, at most, to go from Envoy's main thread
// to its (single) worker thread. In practice it is well under a millisecond.
const workerSettle = 100 * time.Millisecond

func sameWeights(got, want map[string]float64) bool {
	keys := map[string]bool{}
	for k := range maps.Keys(got) {
		keys[k] = true
	}
	for k := range maps.Keys(want) {
		keys[k] = true
	}
	for k := range keys {
		if d := got[k] - want[k]; d > 0.01 || d < -0.01 {
			return false
		}
	}
	return true
}
