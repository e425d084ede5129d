package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/rollout"
	"github.com/weir-mesh/weir/translator"
	"github.com/weir-mesh/weir/watchers/file"
)

// validate loads a directory, translates it for a sidecar in every namespace it mentions
// and for the gateway proxy of every Gateway,
// prints every diagnostic and reports whether any is an error.
func validate(args []string, out io.Writer) (bool, error) {
	if len(args) != 1 {
		return false, fmt.Errorf("usage: weir validate DIR")
	}
	snap, err := file.Load(args[0])
	if err != nil {
		return false, err
	}
	diags := append([]model.Diagnostic(nil), snap.Diagnostics...)
	// Rollouts are checked mid-way: both subsets receive traffic (and the A/B route exists).
	var shifts []rollout.Shift
	for _, r := range snap.Rollouts {
		shifts = append(shifts, rollout.Shift{Rollout: r, State: rollout.State{Stable: r.Spec.Stable, Canary: r.Spec.Canary,
			CanaryWeight: 50, Match: r.Spec.Strategy.ABTesting != nil}})
	}
	snap, rd := rollout.Apply(snap, shifts)
	diags = append(diags, rd...)
	for _, ns := range namespaces(snap) {
		_, d := translator.Translate(snap, model.ProxyClass{
			Role: model.RoleSidecar, Namespace: ns,
			OutboundAddress: model.DefaultOutboundAddress, OutboundPort: model.DefaultOutboundPort,
		})
		diags = append(diags, d...)
	}
	// Each Gateway is checked as the gateway proxy it selects would see it, running in the
	// Gateway's namespace (where its credentialName Secrets are looked up).
	for _, gw := range snap.Gateways {
		_, d := translator.Translate(snap, model.ProxyClass{
			Role: model.RoleGateway, Namespace: gw.Source.Namespace, Labels: gw.Spec.GetSelector(),
		})
		diags = append(diags, d...)
	}
	seen := map[string]bool{}
	errors, warnings := 0, 0
	for _, d := range diags {
		s := d.String()
		if seen[s] {
			continue
		}
		seen[s] = true
		fmt.Fprintln(out, s)
		if d.Severity == model.SeverityError {
			errors++
		} else {
			warnings++
		}
	}
	fmt.Fprintf(out, "%s: %d services, %d endpoints, %d virtual services, %d destination rules, %d gateways, %d sidecars, %d rollouts; %d errors, %d warnings\n",
		args[0], len(snap.Services), len(snap.Endpoints), len(snap.VirtualServices), len(snap.DestinationRules),
		len(snap.Gateways), len(snap.Sidecars), len(snap.Rollouts), errors, warnings)
	return errors > 0, nil
}

func namespaces(snap *model.Snapshot) []string {
	set := map[string]bool{"default": true}
	for _, s := range snap.Services {
		set[s.Namespace] = true
	}
	for _, vs := range snap.VirtualServices {
		set[vs.Source.Namespace] = true
	}
	out := make([]string, 0, len(set))
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}
