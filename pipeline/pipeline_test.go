package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"go.uber.org/zap/zaptest"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/xds"
)

// recorder is a Publisher that keeps what it was given, per class.
type recorder struct {
	mu   sync.Mutex
	got  map[string]*xds.Resources
	sets int
}

func (r *recorder) Publish(class string, res *xds.Resources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]*xds.Resources{}
	}
	r.got[class] = res
	r.sets++
	return nil
}

func (r *recorder) clusters(class string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	if res, ok := r.got[class]; ok {
		for _, c := range res.Clusters {
			names = append(names, c.(*clusterv3.Cluster).Name)
		}
	}
	return names
}

func reviews(subsets ...string) *model.Snapshot {
	dr := &networking.DestinationRule{Host: "reviews"}
	for _, s := range subsets {
		dr.Subsets = append(dr.Subsets, &networking.Subset{Name: s, Labels: map[string]string{"version": s}})
	}
	return &model.Snapshot{
		Services: []*model.Service{{
			Source: model.Ref{Kind: "Service", Namespace: "default", Name: "reviews"}, Hostname: "reviews.default.svc.cluster.local",
			Name: "reviews", Namespace: "default", Resolution: model.ResolutionStatic,
			Ports: []model.ServicePort{{Name: "http", Number: 80, TargetPort: 9080, Protocol: model.ProtocolHTTP}},
		}},
		DestinationRules: []*model.DestinationRule{{Source: model.Ref{Kind: "DestinationRule", Namespace: "default", Name: "reviews"}, Spec: dr}},
	}
}

func sidecar(ns string) model.ProxyClass {
	return model.ProxyClass{Role: model.RoleSidecar, Namespace: ns, OutboundAddress: "127.0.0.1", OutboundPort: 15001}
}

func TestPipelineTranslatesPerClassAndOnEveryUpdate(t *testing.T) {
	rec := &recorder{}
	p := New(zaptest.NewLogger(t), rec, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)

	if p.Ready() {
		t.Fatal("ready before any snapshot")
	}
	a, b := sidecar("default"), sidecar("other")
	p.AddClass(a)
	p.Update(reviews("v1"))
	eventually(t, func() bool { return len(rec.clusters(a.Key())) == 2 })
	if !p.Ready() {
		t.Error("not ready after the first snapshot")
	}

	// A class that connects later gets the current snapshot.
	p.AddClass(b)
	eventually(t, func() bool { return len(rec.clusters(b.Key())) == 2 })

	// A new snapshot reaches every known class.
	p.Update(reviews("v1", "v2"))
	eventually(t, func() bool { return len(rec.clusters(a.Key())) == 3 && len(rec.clusters(b.Key())) == 3 })
}

func TestPipelineReportsDiagnostics(t *testing.T) {
	rec := &recorder{}
	p := New(zaptest.NewLogger(t), rec, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)

	snap := reviews("v1")
	bad := model.Errorf(model.Ref{Kind: "VirtualService", Namespace: "default", Name: "x", File: "vs.yaml"}, "spec.http[0]", "broken")
	snap.Diagnostics = []model.Diagnostic{bad}
	p.AddClass(sidecar("default"))
	p.Update(snap)
	eventually(t, func() bool {
		for _, d := range p.Diagnostics() {
			if d == bad {
				return true
			}
		}
		return false
	})
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOverlayIsAppliedAndRefreshIsPublished(t *testing.T) {
	rec := &recorder{}
	p := New(zaptest.NewLogger(t), rec, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	var mu sync.Mutex
	subsets := []string{"v1"}
	p.SetOverlay(func(s *model.Snapshot) (*model.Snapshot, []model.Diagnostic) {
		mu.Lock()
		defer mu.Unlock()
		return reviews(subsets...), []model.Diagnostic{model.Warnf(model.Ref{Kind: "Rollout", Name: "r"}, "", "from the overlay")}
	})
	a := sidecar("default")
	p.AddClass(a)
	p.Update(reviews("v1"))
	eventually(t, func() bool { return len(rec.clusters(a.Key())) == 2 })

	mu.Lock()
	subsets = []string{"v1", "v2"}
	mu.Unlock()
	gen := p.Refresh()
	eventually(t, func() bool { return p.Published() >= gen })
	if got := rec.clusters(a.Key()); len(got) != 3 {
		t.Errorf("after Refresh the overlay's snapshot is not what was published: clusters %v", got)
	}
	found := false
	for _, d := range p.Diagnostics() {
		found = found || d.Message == "from the overlay"
	}
	if !found {
		t.Errorf("overlay diagnostics are not reported: %v", p.Diagnostics())
	}
}
