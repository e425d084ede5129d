// Package kube reads a Kubernetes cluster into model.Snapshots: Services, EndpointSlices
// and Pods, TLS Secrets, the networking.istio.io objects weir reads, and weir's Rollouts,
// through client-go shared informers, decoded and validated by the file source's rules.
package kube

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/watchers/file"
)

// Defaults of the debounce, as for the file source: a burst of changes (a Deployment
// rolling, kubectl apply -f dir/) becomes one snapshot, and a steady stream still
// publishes at least once per max delay.
const (
	DefaultHoldOff  = 100 * time.Millisecond
	DefaultMaxDelay = time.Second
)

const tlsSecretType = "kubernetes.io/tls"

// coreResources are read from every cluster. Everything is read through the dynamic
// client: the typed clientset would link every Kubernetes API group into weir and cost
// tens of megabytes of memory that a file-only weir would carry too.
var coreResources = []schema.GroupVersionResource{
	{Version: "v1", Resource: "services"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	{Version: "v1", Resource: "pods"},
}

// secrets are read by type: only TLS Secrets are Gateway credentials.
var secrets = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// customResources are the objects weir reads that a cluster may not have the CRDs of.
var customResources = []schema.GroupVersionResource{
	{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
	{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
	{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"},
	{Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
	{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"},
	{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: "rollouts"},
}

// Watcher keeps a cluster's snapshot current.
type Watcher struct {
	dyn       dynamic.Interface
	log       *zap.Logger
	namespace string
	holdOff   time.Duration
	maxDelay  time.Duration
	objs      *file.Objects
	changed   chan struct{}
}

// Option configures a Watcher.
type Option func(*Watcher)

// WithNamespace limits the watcher to one namespace (default: all).
func WithNamespace(ns string) Option { return func(w *Watcher) { w.namespace = ns } }

// WithHoldOff sets how long the cluster must be quiet before a snapshot is built.
func WithHoldOff(d time.Duration) Option { return func(w *Watcher) { w.holdOff = d } }

// WithMaxDelay bounds how long a stream of changes can postpone a snapshot.
func WithMaxDelay(d time.Duration) Option { return func(w *Watcher) { w.maxDelay = d } }

// NewWatcher returns a watcher of the cluster the clients talk to. The caller names the
// logger.
func NewWatcher(dyn dynamic.Interface, log *zap.Logger, opts ...Option) *Watcher {
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{dyn: dyn, log: log, holdOff: DefaultHoldOff, maxDelay: DefaultMaxDelay,
		objs: file.NewObjects(), changed: make(chan struct{}, 1)}
	for _, opt := range opts {
		opt(w)
	}
	return w
}

// Run starts the informers, waits until every one has synced, publishes the first
// snapshot, then one each time changes settle. Nothing is published before the first full
// sync, so a restart never serves a partial cluster. It returns when ctx ends, or an
// error if the informers cannot sync.
func (w *Watcher) Run(ctx context.Context, publish func(*model.Snapshot)) error {
	var synced []cache.InformerSynced
	var infs []cache.SharedIndexInformer
	for _, gvr := range append(slices.Clone(coreResources), w.servedResources(ctx)...) {
		infs = append(infs, w.informer(gvr, ""))
	}
	infs = append(infs, w.informer(secrets, "type="+tlsSecretType))
	for _, inf := range infs {
		synced = append(synced, w.handle(inf))
		go inf.Run(ctx.Done())
	}
	began := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kubernetes informers did not sync")
	}
	w.log.Info("informers synced", zap.Duration("took", time.Since(began)))
	publish(w.objs.Snapshot())
	return w.loop(ctx, publish)
}

// servedResources are the custom resources the cluster has: a CRD that is not installed
// (no Istio, say) is logged and not watched, rather than blocking the sync forever. A
// one-item list tells (the discovery client would link in all of OpenAPI for this).
func (w *Watcher) servedResources(ctx context.Context) []schema.GroupVersionResource {
	var out []schema.GroupVersionResource
	for _, gvr := range customResources {
		_, err := w.dyn.Resource(gvr).Namespace(w.namespace).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case apierrors.IsNotFound(err):
			w.log.Warn("resource not served by the cluster; not watched (install its CRD)", zap.String("resource", gvr.String()))
			continue
		case apierrors.IsForbidden(err):
			// Watched anyway: nothing is published until it syncs, which it does as soon
			// as the RBAC is fixed.
			w.log.Error("not allowed to list; nothing is served until weir's RBAC allows it (see deploy/weir/rbac.yaml)",
				zap.String("resource", gvr.String()), zap.Error(err))
		}
		out = append(out, gvr)
	}
	return out
}

// informer lists and watches one resource through the dynamic client (what the dynamic
// informer factory does, without linking every typed informer of client-go into weir).
func (w *Watcher) informer(gvr schema.GroupVersionResource, fieldSelector string) cache.SharedIndexInformer {
	client := w.dyn.Resource(gvr).Namespace(w.namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			return client.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return client.Watch(ctx, o)
		},
	}
	// A client that cannot stream lists (a fake one) must say so, or the informer waits for
	// a stream that never comes.
	return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, w.dyn), &unstructured.Unstructured{}, 0, cache.Indexers{})
}

// handle feeds an informer's objects into the set, as JSON: what the file source reads.
func (w *Watcher) handle(inf cache.SharedIndexInformer) cache.InformerSynced {
	set := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		data, err := u.MarshalJSON()
		if err != nil {
			w.log.Error("cannot encode object", zap.String("object", objectID(u)), zap.Error(err))
			return
		}
		w.objs.Set(objectID(u), data)
		w.poke()
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				w.objs.Delete(objectID(u))
				w.poke()
			}
		},
	})
	if err != nil {
		w.log.Error("cannot watch", zap.Error(err))
	}
	return inf.HasSynced
}

// objectID names an object uniquely: kind/namespace/name.
func objectID(u *unstructured.Unstructured) string {
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

// poke notes a change without blocking: one pending note is enough.
func (w *Watcher) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// loop publishes a snapshot once changes have been quiet for holdOff, or maxDelay after
// the first change of a burst.
func (w *Watcher) loop(ctx context.Context, publish func(*model.Snapshot)) error {
	var first time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			timer.Reset(max(min(w.holdOff, w.maxDelay-now.Sub(first)), 0))
		case <-timer.C:
			first = time.Time{}
			publish(w.objs.Snapshot())
		}
	}
}
