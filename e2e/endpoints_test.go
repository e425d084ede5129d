package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// ratingsPods writes the ratings Service and one Pod per backend; every Pod is a v1 pod,
// and the backend's version string names the instance, so a response says which
// endpoint answered.
func ratingsPods(bs ...*backend.Backend) string {
	docs := []string{fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 80, targetPort: %d}]
`, bs[0].Port())}
	for _, b := range bs {
		ip, _, _ := strings.Cut(b.Addr(), ":")
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: ratings-%s, namespace: default, labels: {app: ratings, version: v1}}
status: {phase: Running, podIP: %s}
`, b.Version(), ip))
	}
	return strings.Join(docs, "---\n")
}

// TestEndpointChangesAreEDSOnly adds and removes endpoints under traffic, with a
// state-of-the-world and a delta Envoy: traffic follows the endpoints, no request fails,
// and weir sends endpoints only — not one cluster, listener or route push.
func TestEndpointChangesAreEDSOnly(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackendsFrom(21, "pod-a", "pod-b")
	a, b := bs[0], bs[1]
	env.WriteFile("ratings.yaml", ratingsPods(a))
	env.StartWeir()
	w := env.Weir()
	envoys := []*Envoy{env.StartEnvoy(EnvoyOptions{}), env.StartEnvoy(EnvoyOptions{Delta: true})}
	for _, e := range envoys {
		waitOnly(t, e, "pod-a")
		AssertAll(t, e.NodeID+" before", e.Traffic("ratings").Send(100), "pod-a")
		w.WaitAcked(t, e.NodeID)
	}
	pushes := func(typ string) float64 { return w.Metric(t, `weir_xds_pushes_total{type="`+typ+`"}`) }
	before := map[string]float64{}
	for _, typ := range []string{"cds", "eds", "lds", "rds"} {
		before[typ] = pushes(typ)
	}
	var bgs []*Background
	for _, e := range envoys {
		bgs = append(bgs, e.Traffic("ratings").Background(t, time.Minute))
	}

	env.WriteFile("ratings.yaml", ratingsPods(a, b)) // scale up
	for _, e := range envoys {
		waitBoth(t, e)
	}
	env.WriteFile("ratings.yaml", ratingsPods(b)) // pod-a goes away
	for _, e := range envoys {
		waitOnly(t, e, "pod-b")
		AssertAll(t, e.NodeID+" after pod-a left", e.Traffic("ratings").Send(300), "pod-b")
	}
	for i, bg := range bgs {
		ta := bg.Stop()
		t.Logf("MEASURE endpoint churn under traffic (%s): %d requests, %d failed", envoys[i].NodeID, ta.Total, ta.Failures())
		if ta.Total == 0 || ta.Failures() > 0 {
			t.Errorf("%s: %d of %d requests failed while endpoints changed: %v", envoys[i].NodeID, ta.Failures(), ta.Total, ta.FirstErrors)
		}
	}
	for _, typ := range []string{"cds", "lds", "rds"} {
		if d := pushes(typ) - before[typ]; d != 0 {
			t.Errorf("endpoint changes caused %v %s pushes, want 0", d, typ)
		}
	}
	if d := pushes("eds") - before["eds"]; d < 4 {
		t.Errorf("two endpoint changes to two Envoys made %v EDS pushes, want at least 4", d)
	} else {
		t.Logf("MEASURE endpoint changes: %v EDS pushes, 0 CDS/LDS/RDS", d)
	}
}

// waitOnly waits until a batch of the Envoy's ratings requests all reach one instance.
func waitOnly(t *testing.T, e *Envoy, instance string) {
	t.Helper()
	ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		ta := e.Traffic("ratings").Send(40)
		return ta.Versions[instance] == ta.Total
	})
	if !ok {
		t.Fatalf("%s: traffic did not settle on %s", e.NodeID, instance)
	}
}

// waitBoth waits until both instances answer within one batch of requests.
func waitBoth(t *testing.T, e *Envoy) {
	t.Helper()
	ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		ta := e.Traffic("ratings").Send(40)
		return ta.Versions["pod-a"] > 0 && ta.Versions["pod-b"] > 0
	})
	if !ok {
		t.Fatalf("%s: traffic did not reach both endpoints", e.NodeID)
	}
}
