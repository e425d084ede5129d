package translator

import (
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// clusterPolicy is a DestinationRule traffic policy compiled into the Envoy settings weir
// supports. A nil block means "not configured": the defaults apply, or, while policies
// are being layered (subset over top level, port over both), "inherited". Policies are
// compiled once per block as written, so their diagnostics are reported once, not once
// per port.
type clusterPolicy struct {
	lb      *lbSettings
	pool    *poolSettings
	outlier *outlierSettings
	tls     *tlsSettings
	budget  *clusterv3.CircuitBreakers_Thresholds_RetryBudget
}

// overlay applies Istio's override rule: each block over sets replaces the block of base
// wholesale; the blocks it does not set are inherited.
func overlay(base, over clusterPolicy) clusterPolicy {
	p := base
	if over.lb != nil {
		p.lb = over.lb
	}
	if over.pool != nil {
		p.pool = over.pool
	}
	if over.outlier != nil {
		p.outlier = over.outlier
	}
	if over.tls != nil {
		p.tls = over.tls
	}
	if over.budget != nil {
		p.budget = over.budget
	}
	return p
}

// trafficPolicyFields are the trafficPolicy fields weir reads; tunnel and proxyProtocol
// are refused with their own message.
var trafficPolicyFields = []string{"loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings",
	"retryBudget", "tunnel", "proxyProtocol"}

// compileTrafficPolicy translates the blocks of one trafficPolicy (not its
// portLevelSettings, which compilePortPolicies reads); path is where it sits in the
// DestinationRule, for diagnostics.
func compileTrafficPolicy(src model.Ref, path string, tp *networking.TrafficPolicy) (clusterPolicy, []model.Diagnostic) {
	if tp == nil {
		return clusterPolicy{}, nil
	}
	diags := ignoredFields(src, path, tp, trafficPolicyFields...)
	diags = append(diags, refusedTrafficPolicyFields(src, path, tp)...)
	p, ds := compileBlocks(src, path, tp.LoadBalancer, tp.ConnectionPool, tp.OutlierDetection, tp.Tls)
	diags = append(diags, ds...)
	if tp.RetryBudget != nil {
		p.budget = retryBudget(tp.RetryBudget)
		diags = append(diags, ignoredFields(src, path+".retryBudget", tp.RetryBudget,
			"percent", "minRetryConcurrency", "budgetInterval")...)
	}
	return p, diags
}

// compileBlocks translates the four blocks a trafficPolicy and a port-level setting share.
func compileBlocks(src model.Ref, path string, lb *networking.LoadBalancerSettings, cp *networking.ConnectionPoolSettings,
	od *networking.OutlierDetection, tls *networking.ClientTLSSettings) (clusterPolicy, []model.Diagnostic) {
	var p clusterPolicy
	var diags, ds []model.Diagnostic
	if lb != nil {
		p.lb, ds = compileLoadBalancer(src, path+".loadBalancer", lb)
		diags = append(diags, ds...)
	}
	if cp != nil {
		p.pool, ds = compileConnectionPool(src, path+".connectionPool", cp)
		diags = append(diags, ds...)
	}
	if od != nil {
		p.outlier, ds = compileOutlierDetection(src, path+".outlierDetection", od)
		diags = append(diags, ds...)
	}
	if tls != nil {
		p.tls, ds = compileUpstreamTLS(src, path+".tls", tls)
		diags = append(diags, ds...)
	}
	return p, diags
}

// refusedTrafficPolicyFields explains the trafficPolicy fields weir cannot honour on the
// HTTP ports it serves.
func refusedTrafficPolicyFields(src model.Ref, path string, tp *networking.TrafficPolicy) []model.Diagnostic {
	var out []model.Diagnostic
	if tp.Tunnel != nil {
		out = append(out, model.Warnf(src, path+".tunnel",
			"tunnel is not supported: it wraps TCP connections in HTTP CONNECT or POST, and weir serves HTTP ports only (no TCP proxy); ignored"))
	}
	if tp.ProxyProtocol != nil {
		out = append(out, model.Warnf(src, path+".proxyProtocol",
			"proxyProtocol is not supported yet: connections to the backend carry no PROXY protocol header; ignored"))
	}
	return out
}

// retryBudget limits concurrent retries to a share of the active requests (Envoy then
// ignores max_retries, as Istio documents).
func retryBudget(rb *networking.TrafficPolicy_RetryBudget) *clusterv3.CircuitBreakers_Thresholds_RetryBudget {
	out := &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetInterval: cloneDuration(rb.BudgetInterval)}
	if rb.Percent != nil {
		out.BudgetPercent = &typev3.Percent{Value: rb.Percent.Value}
	}
	if rb.MinRetryConcurrency > 0 {
		out.MinRetryConcurrency = wrapperspb.UInt32(rb.MinRetryConcurrency)
	}
	return out
}

// subsetPolicy compiles a subset's own blocks, warning about every top-level field lost
// because a block replaces, rather than merges with, the one above.
func subsetPolicy(src model.Ref, path string, top *networking.TrafficPolicy, sub *networking.TrafficPolicy) (clusterPolicy, []model.Diagnostic) {
	if sub == nil {
		return clusterPolicy{}, nil
	}
	own, diags := compileTrafficPolicy(src, path, sub)
	base := writtenBlocksOf("spec.trafficPolicy", top)
	return own, append(diags, replacedBlocks(src, "this subset", base, writtenBlocksOf(path, sub))...)
}

// blockNames are the replaceable blocks of a trafficPolicy or a port-level setting.
var blockNames = [4]string{"loadBalancer", "connectionPool", "outlierDetection", "tls"}

// writtenBlocks are those blocks as written, each with the path it was written at; an
// unset block is nil.
type writtenBlocks struct {
	msgs  [4]proto.Message
	paths [4]string
}

func newWrittenBlocks(path string, lb, cp, od, tls proto.Message) writtenBlocks {
	var b writtenBlocks
	for i, m := range []proto.Message{lb, cp, od, tls} {
		if m != nil && m.ProtoReflect().IsValid() {
			b.msgs[i], b.paths[i] = m, path+"."+blockNames[i]
		}
	}
	return b
}

func writtenBlocksOf(path string, tp *networking.TrafficPolicy) writtenBlocks {
	return newWrittenBlocks(path, tp.GetLoadBalancer(), tp.GetConnectionPool(), tp.GetOutlierDetection(), tp.GetTls())
}

// under returns b with each block that over sets replaced by over's.
func (b writtenBlocks) under(over writtenBlocks) writtenBlocks {
	for i, m := range over.msgs {
		if m != nil {
			b.msgs[i], b.paths[i] = m, over.paths[i]
		}
	}
	return b
}

// replacedBlocks warns, for each block over sets, about the fields the block of base it
// replaces had set; scope says what over applies to ("this subset").
func replacedBlocks(src model.Ref, scope string, base, over writtenBlocks) []model.Diagnostic {
	var out []model.Diagnostic
	for i, m := range over.msgs {
		if m != nil && base.msgs[i] != nil {
			out = append(out, replacedBlock(src, over.paths[i], base.paths[i], scope, base.msgs[i], m)...)
		}
	}
	return out
}

// replacedBlock warns when a block drops fields that the block it replaces set.
func replacedBlock(src model.Ref, path, topPath, scope string, top, sub proto.Message) []model.Diagnostic {
	if !top.ProtoReflect().IsValid() {
		return nil
	}
	kept := leafPaths(sub.ProtoReflect(), "")
	var lost []string
	for _, f := range leafPaths(top.ProtoReflect(), "") {
		if !containsPathOrParent(kept, f) {
			lost = append(lost, f)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return []model.Diagnostic{model.Warnf(src, path,
		"replaces %s wholesale (Istio's rule; blocks are not merged field by field), so these fields set there fall back to their defaults for %s: %s; repeat them here to keep them",
		topPath, scope, strings.Join(lost, ", "))}
}

// containsPathOrParent reports whether f, or a path that f refines or that refines f
// (a oneof or a set message), is among paths.
func containsPathOrParent(paths []string, f string) bool {
	for _, p := range paths {
		if p == f || strings.HasPrefix(f, p+".") || strings.HasPrefix(p, f+".") {
			return true
		}
	}
	return false
}

func seconds(d *durationpb.Duration) uint32 {
	return uint32(d.AsDuration() / time.Second)
}

func positive(v int32) uint32 {
	if v <= 0 {
		return 0
	}
	return uint32(v)
}

func cloneDuration(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return proto.Clone(d).(*durationpb.Duration)
}
