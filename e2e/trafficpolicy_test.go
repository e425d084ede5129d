package e2e

import (
	"strings"
	"testing"
)

// everyPolicyField sets every traffic-policy field weir translates, at the top level, in
// port-level settings and in subsets (TLS has its own test, against TLS backends).
const everyPolicyField = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings.mesh.internal
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmup: {duration: 10s, minimumPercent: 20, aggression: 1.5}
      localityLbSetting:
        failover: [{from: local, to: region-b}]
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 2s
        tcpKeepalive: {probes: 3, time: 600s, interval: 30s}
        maxConnectionDuration: 3600s
        idleTimeout: 900s
      http:
        http1MaxPendingRequests: 100
        http2MaxRequests: 100
        maxRequestsPerConnection: 50
        maxRetries: 3
        idleTimeout: 60s
        useClientProtocol: true
        maxConcurrentStreams: 100
        http2KeepAlive: {interval: 30s, timeout: 5s}
    outlierDetection:
      consecutive5xxErrors: 5
      consecutiveGatewayErrors: 3
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 4
      interval: 5s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
      minHealthPercent: 10
    retryBudget: {percent: 20, minRetryConcurrency: 3, budgetInterval: 1s}
    portLevelSettings:
    - port: {number: 80}
      loadBalancer:
        consistentHash:
          httpCookie: {name: weir-session, path: /, ttl: 60s, attributes: [{name: SameSite, value: Lax}]}
          maglev: {tableSize: 65537}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 2048}}
        localityLbSetting:
          distribute: [{from: "*", to: {"local/*": 70, "region-b/*": 30}}]
      connectionPool:
        http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 10}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        simple: LEAST_REQUEST
        warmupDurationSecs: 5s
        localityLbSetting:
          failoverPriority: [version, topology.kubernetes.io/region]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.mesh.internal]
  http:
  - match: [{headers: {x-subset: {exact: v1}}}]
    route: [{destination: {host: ratings.mesh.internal, subset: v1}}]
  - match: [{headers: {x-subset: {exact: v2}}}]
    route: [{destination: {host: ratings.mesh.internal, subset: v2}}]
  - route:
    - {destination: {host: ratings.mesh.internal, subset: v1}, weight: 50}
    - {destination: {host: ratings.mesh.internal, subset: v2}, weight: 50}
`

// TestEveryTrafficPolicyFieldIsAcceptedByEnvoy: proto validation does not know all of
// Envoy's rules (which load balancers take slow start, which HTTP/2 options a downstream-
// protocol cluster takes, Maglev table sizes), so every field weir translates goes to a
// real Envoy at once: it must ACK all of it (the harness fails the test on any NACK) and
// serve every route.
func TestEveryTrafficPolicyFieldIsAcceptedByEnvoy(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(205, "v1", "v2", "v2")
	where := map[string]string{"v1": "local/local-a", "v2": "region-b/zone-1"}
	entry := placedEntry("ratings.mesh.internal", bs, where)
	// Label each endpoint with its version, for the subsets.
	entry = strings.ReplaceAll(entry, "locality: local/local-a}", "locality: local/local-a, labels: {version: v1}}")
	entry = strings.ReplaceAll(entry, "locality: region-b/zone-1}", "locality: region-b/zone-1, labels: {version: v2}}")
	env.WriteFile("ratings.yaml", entry+"---\n"+everyPolicyField)
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)

	tr := e.Traffic("ratings.mesh.internal")
	AssertAll(t, "subset v1 (ring hash on the source IP, h2 upstream)", tr.With("x-subset", "v1").Send(50), "v1")
	AssertAll(t, "subset v2 (least request, slow start, failover by labels)", tr.With("x-subset", "v2").Send(50), "v2")
	// The 50/50 split hashes on v1's key, the source IP, and picks the subset by that hash
	// too: one client stays on one subset.
	split := tr.Send(200)
	t.Logf("MEASURE 50/50 split from one client IP: %v", split)
	if split.Failures() != 0 || len(split.Versions) != 1 {
		t.Errorf("one client should stay on one subset of the split: %v", split)
	}
}
