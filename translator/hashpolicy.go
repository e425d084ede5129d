package translator

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-mesh/weir/model"
)

// Consistent hashing has two halves in Envoy: the cluster's load balancer (ring hash or
// Maglev, set by the DestinationRule) and the hash_policy of every route that sends to the
// cluster, which says what to hash. This file is the route half: buildClusters records
// each consistent-hash cluster's key, and addHashPolicy copies it onto route actions.

// recordHashPolicy remembers what a cluster hashes on; clusters without consistent
// hashing are not recorded.
func (t *translation) recordHashPolicy(cluster string, lb *lbSettings) {
	if lb == nil || lb.hash == nil {
		return
	}
	if t.hashPolicies == nil {
		t.hashPolicies = map[string]*routev3.RouteAction_HashPolicy{}
	}
	t.hashPolicies[cluster] = lb.hash
}

// addHashPolicy gives a route action the hash policy of the consistent-hash clusters it
// sends to. Envoy computes one hash per route, so when those clusters hash on different
// keys only the first destination's key is used, and src is told at path.
//
// When the action splits traffic by weight, the same hash also picks the destination
// (use_hash_policy): a client then stays on one subset as well as on one endpoint, and a
// canary moving from 10 % to 20 % keeps its first 10 % of clients. Istio picks the
// destination at random per request, so a client flips between subsets.
func (t *translation) addHashPolicy(action *routev3.RouteAction, src model.Ref, path string) {
	var clusters []string
	switch spec := action.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		clusters = []string{spec.Cluster}
	case *routev3.RouteAction_WeightedClusters:
		for _, c := range spec.WeightedClusters.GetClusters() {
			clusters = append(clusters, c.GetName())
		}
	}
	var chosen *routev3.RouteAction_HashPolicy
	var chosenCluster string
	for _, c := range clusters {
		h := t.hashPolicies[c]
		switch {
		case h == nil:
		case chosen == nil:
			chosen, chosenCluster = h, c
		case !proto.Equal(h, chosen):
			t.diags.add(model.Warnf(src, path,
				"destinations hash on different keys (%s hashes on %s, %s on %s): Envoy computes one hash per route, so %s is hashed on %s too; give the subsets of one route the same consistentHash key",
				chosenCluster, describeHash(chosen), c, describeHash(h), c, describeHash(chosen)))
		}
	}
	if chosen == nil {
		return
	}
	action.HashPolicy = []*routev3.RouteAction_HashPolicy{proto.Clone(chosen).(*routev3.RouteAction_HashPolicy)}
	if wc := action.GetWeightedClusters(); wc != nil {
		wc.RandomValueSpecifier = &routev3.WeightedCluster_UseHashPolicy{UseHashPolicy: wrapperspb.Bool(true)}
	}
}
