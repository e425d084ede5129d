package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1"
)

// TestValidateTrafficPolicy covers the traffic-policy fields Envoy would reject (NACK) or
// that cannot mean anything: each error names the field so that a person can fix it.
func TestValidateTrafficPolicy(t *testing.T) {
	src := Ref{Kind: "DestinationRule", Namespace: "default", Name: "reviews"}
	const lb = "spec.trafficPolicy.loadBalancer"
	for _, tc := range []struct {
		name string
		spec string
		want []string
	}{
		{"every supported field, valid", `
host: reviews
trafficPolicy:
  loadBalancer:
    consistentHash: {httpCookie: {name: user, path: /, ttl: 0s}, maglev: {tableSize: 65537}}
    localityLbSetting:
      distribute:
      - from: region-a/zone-1/*
        to: {"region-a/zone-1/*": 80, "region-a/zone-2/*": 20}
      - from: "*"
        to: {"*": 100}
    warmup: {duration: 30s, minimumPercent: 10, aggression: 1.5}
  connectionPool:
    tcp: {idleTimeout: 0s, maxConnectionDuration: 3600s}
    http: {maxConcurrentStreams: 100, http2KeepAlive: {interval: 10s, timeout: 2s}}
  tls: {mode: MUTUAL, clientCertificate: /certs/client.pem, privateKey: /certs/client.key, caCertificates: /certs/ca.pem}
  retryBudget: {percent: 25, minRetryConcurrency: 3}
  portLevelSettings:
  - port: {number: 9080}
    loadBalancer: {localityLbSetting: {failover: [{from: region-a, to: region-b}]}}
    tls: {mode: SIMPLE, insecureSkipVerify: true}`, nil},
		{"consistent hash sizes and keys", `
host: reviews
trafficPolicy:
  loadBalancer:
    consistentHash: {httpHeaderName: "bad header", minimumRingSize: 9000000, ringHash: {minimumRingSize: 10}}
subsets:
- name: v1
  trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: "", maglev: {tableSize: 0}}}}
- name: v2
  trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {path: /}, maglev: {tableSize: 65536}}}}`, []string{
			lb + ".consistentHash.httpHeaderName",
			lb + ".consistentHash.minimumRingSize",
			lb + ".consistentHash.minimumRingSize",
			"spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.httpQueryParameterName",
			"spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
			"spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
			"spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl",
			"spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
		}},
		{"warmup", `
host: reviews
trafficPolicy:
  loadBalancer:
    warmup: {minimumPercent: 120, aggression: 0}
    warmupDurationSecs: -1s`, []string{
			lb + ".warmup.duration",
			lb + ".warmup.minimumPercent",
			lb + ".warmup.aggression",
			lb + ".warmupDurationSecs",
		}},
		{"distribute weights and patterns", `
host: reviews
trafficPolicy:
  loadBalancer:
    localityLbSetting:
      distribute:
      - from: region-a/*/zone
        to: {"region-a/zone-1": 80, "region-a/zone-2": 30}
      - from: region-b
        to: {"region-b": 0, "*/zone-1": 100}
      - from: region-b
        to: {}`, []string{
			lb + ".localityLbSetting.distribute[0].from",
			lb + ".localityLbSetting.distribute[0].to",
			lb + ".localityLbSetting.distribute[1].to[*/zone-1]",
			lb + ".localityLbSetting.distribute[1].to[region-b]",
			lb + ".localityLbSetting.distribute[2].from",
			lb + ".localityLbSetting.distribute[2].to",
		}},
		{"failover", `
host: reviews
trafficPolicy:
  loadBalancer:
    localityLbSetting:
      distribute: [{from: "*", to: {"*": 100}}]
      failover: [{from: region-a, to: region-a}, {from: region-a/zone-1, to: "*"}]
      failoverPriority: [topology.kubernetes.io/zone, "=x"]`, []string{
			lb + ".localityLbSetting",
			lb + ".localityLbSetting.failoverPriority[0]",
			lb + ".localityLbSetting.failoverPriority[1]",
			lb + ".localityLbSetting.failover[0].to",
			lb + ".localityLbSetting.failover[1].from",
			lb + ".localityLbSetting.failover[1].to",
		}},
		{"tls", `
host: reviews
trafficPolicy:
  tls: {mode: MUTUAL, caCertificates: certs/ca.pem, credentialName: reviews-cert}
subsets:
- name: v1
  trafficPolicy: {tls: {mode: SIMPLE, sni: reviews, subjectAltNames: [""]}}`, []string{
			"spec.trafficPolicy.tls.credentialName",
			"spec.trafficPolicy.tls.caCertificates",
			"spec.subsets[0].trafficPolicy.tls.caCertificates",
			"spec.subsets[0].trafficPolicy.tls.subjectAltNames[0]",
		}},
		{"mutual needs a certificate and its key", `
host: reviews
trafficPolicy:
  tls: {mode: MUTUAL, caCertificates: /certs/ca.pem}`, []string{
			"spec.trafficPolicy.tls.clientCertificate",
			"spec.trafficPolicy.tls.privateKey",
		}},
		{"port-level settings and retry budget", `
host: reviews
trafficPolicy:
  retryBudget: {percent: 150, budgetInterval: -1s}
  portLevelSettings:
  - loadBalancer: {simple: RANDOM}
  - port: {number: 80}
    connectionPool: {http: {maxConcurrentStreams: -1, http2KeepAlive: {interval: 0s}}}
    outlierDetection: {interval: -1s}`, []string{
			"spec.trafficPolicy.portLevelSettings[0].port.number",
			"spec.trafficPolicy.portLevelSettings[1].connectionPool.http.maxConcurrentStreams",
			"spec.trafficPolicy.portLevelSettings[1].connectionPool.http.http2KeepAlive.interval",
			"spec.trafficPolicy.portLevelSettings[1].outlierDetection.interval",
			"spec.trafficPolicy.retryBudget.percent",
			"spec.trafficPolicy.retryBudget.budgetInterval",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dr := &DestinationRule{Source: src, Spec: &networking.DestinationRule{}}
			parse(t, tc.spec, dr.Spec)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, fields(t, src, ValidateDestinationRule(dr))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}
