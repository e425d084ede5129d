package kube

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/weir-mesh/weir/model"
)

// snapshots collects what a watcher publishes.
type snapshots struct {
	mu   sync.Mutex
	list []*model.Snapshot
}

func (s *snapshots) publish(snap *model.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, snap)
}

// waitFor returns the first published snapshot (after the n-th) that satisfies ok.
func (s *snapshots) waitFor(t *testing.T, after int, ok func(*model.Snapshot) bool) (*model.Snapshot, int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for i := after; i < len(s.list); i++ {
			if ok(s.list[i]) {
				s.mu.Unlock()
				return s.list[i], i + 1
			}
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no snapshot as expected within 5 s")
	return nil, 0
}

var vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

func virtualService(weightV2 int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "reviews", "namespace": "default"},
		"spec": map[string]any{"hosts": []any{"reviews"}, "http": []any{map[string]any{"route": []any{
			map[string]any{"destination": map[string]any{"host": "reviews", "subset": "v1"}, "weight": 100 - weightV2},
			map[string]any{"destination": map[string]any{"host": "reviews", "subset": "v2"}, "weight": weightV2},
		}}}},
	}}
}

// Objects from the cluster reach the snapshot through the file source's decoders; an
// edit publishes a new snapshot; a resource the cluster does not serve (no Rollout CRD,
// no Gateway CRD here) is not waited for.
func TestWatcherPublishesTheCluster(t *testing.T) {
	service := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "reviews", "namespace": "default"},
		"spec":     map[string]any{"selector": map[string]any{"app": "reviews"}, "ports": []any{map[string]any{"name": "http", "port": int64(80)}}},
	}}
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "reviews-v1", "namespace": "default", "labels": map[string]any{"app": "reviews", "version": "v1"}},
		"status":   map[string]any{"phase": "Running", "podIP": "10.0.0.1"},
	}}
	lists := map[schema.GroupVersionResource]string{vsGVR: "VirtualServiceList", secrets: "SecretList"}
	for _, gvr := range coreResources {
		lists[gvr] = map[string]string{"services": "ServiceList", "endpointslices": "EndpointSliceList", "pods": "PodList"}[gvr.Resource]
	}
	for _, gvr := range customResources {
		if _, ok := lists[gvr]; !ok {
			lists[gvr] = "UnservedList"
		}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, service, pod, virtualService(10))
	// This cluster has only the VirtualService CRD.
	dyn.PrependReactor("list", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if gvr := a.GetResource(); gvr.Group != "" && gvr.Group != "discovery.k8s.io" && gvr != vsGVR {
			return true, nil, apierrors.NewNotFound(gvr.GroupResource(), "")
		}
		return false, nil, nil
	})
	w := NewWatcher(dyn, zaptest.NewLogger(t), WithHoldOff(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got snapshots
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, got.publish) }()

	snap, n := got.waitFor(t, 0, func(s *model.Snapshot) bool { return true })
	if len(snap.Services) != 1 || snap.Services[0].Hostname != "reviews.default.svc.cluster.local" || len(snap.Endpoints) != 1 ||
		len(snap.VirtualServices) != 1 || snap.VirtualServices[0].Spec.Http[0].Route[1].Weight != 10 {
		t.Fatalf("first snapshot: services %v, endpoints %d, virtual services %v; diagnostics %v",
			snap.Services, len(snap.Endpoints), snap.VirtualServices, snap.Diagnostics)
	}
	if snap.VirtualServices[0].Source.File != "" {
		t.Errorf("a cluster object names no file: %v", snap.VirtualServices[0].Source)
	}

	if _, err := dyn.Resource(vsGVR).Namespace("default").Update(ctx, virtualService(50), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got.waitFor(t, n, func(s *model.Snapshot) bool {
		return len(s.VirtualServices) == 1 && s.VirtualServices[0].Spec.Http[0].Route[1].Weight == 50
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
