package file

import (
	"cmp"
	"slices"

	"github.com/weir-mesh/weir/model"
)

// build assembles the objects being served, sorted by key, into a snapshot. Only
// problems that need several objects to see (a host defined twice, a slice naming no
// Service) are found here; everything else was found when the object was read.
func build(objs []*object) *model.Snapshot {
	snap := &model.Snapshot{}
	services, diags := buildServices(objs)
	eps := newEndpoints(objs)
	for _, s := range services {
		snap.Services = append(snap.Services, s.model)
		if s.src.service != nil {
			eps.kube(s)
		} else {
			eps.entry(s)
		}
	}
	eps.unusedSlices()
	snap.Endpoints = sortEndpoints(eps.out)
	snap.Diagnostics = append(diags, eps.diags...)
	for _, o := range objs {
		switch {
		case o.vs != nil:
			snap.VirtualServices = append(snap.VirtualServices, o.vs)
		case o.dr != nil:
			snap.DestinationRules = append(snap.DestinationRules, o.dr)
		case o.gateway != nil:
			snap.Gateways = append(snap.Gateways, o.gateway)
		case o.sidecar != nil:
			snap.Sidecars = append(snap.Sidecars, o.sidecar)
		case o.secret != nil:
			snap.Secrets = append(snap.Secrets, o.secret)
		case o.rollout != nil:
			snap.Rollouts = append(snap.Rollouts, o.rollout)
		}
	}
	slices.SortStableFunc(snap.Services, func(a, b *model.Service) int { return cmp.Compare(a.Hostname, b.Hostname) })
	slices.SortStableFunc(snap.VirtualServices, func(a, b *model.VirtualService) int { return compareNames(a.Source, b.Source) })
	slices.SortStableFunc(snap.DestinationRules, func(a, b *model.DestinationRule) int { return compareNames(a.Source, b.Source) })
	slices.SortStableFunc(snap.Gateways, func(a, b *model.Gateway) int { return compareNames(a.Source, b.Source) })
	slices.SortStableFunc(snap.Sidecars, func(a, b *model.Sidecar) int { return compareNames(a.Source, b.Source) })
	slices.SortStableFunc(snap.Secrets, func(a, b *model.Secret) int { return compareNames(a.Source, b.Source) })
	slices.SortStableFunc(snap.Rollouts, func(a, b *model.Rollout) int { return compareNames(a.Source, b.Source) })
	return snap
}

// buildServices converts Services, then ServiceEntries; a hostname belongs to the first
// object that defines it, so a Kubernetes Service is never shadowed by a ServiceEntry.
func buildServices(objs []*object) ([]*service, []model.Diagnostic) {
	var out []*service
	var diags []model.Diagnostic
	owner := map[string]model.Ref{}
	claim := func(s *service) {
		if first, ok := owner[s.model.Hostname]; ok {
			diags = append(diags, model.Errorf(s.src.ref, "", "host %s is already defined by %s; ignored here", s.model.Hostname, first))
			return
		}
		owner[s.model.Hostname] = s.src.ref
		out = append(out, s)
	}
	for _, o := range objs {
		if o.service != nil {
			s, d := kubeService(o)
			diags = append(diags, d...)
			if s != nil {
				claim(s)
			}
		}
	}
	for _, o := range objs {
		if o.entry != nil {
			ss, d := entryServices(o)
			diags = append(diags, d...)
			for _, s := range ss {
				claim(s)
			}
		}
	}
	return out, diags
}

// sortEndpoints orders endpoints by hostname, service port, address and port, and drops
// repeats of one address:port (say a Pod also written as a WorkloadEntry): the first
// source in object order wins.
func sortEndpoints(eps []*model.Endpoint) []*model.Endpoint {
	slices.SortStableFunc(eps, compareEndpoints)
	return slices.CompactFunc(eps, func(a, b *model.Endpoint) bool { return compareEndpoints(a, b) == 0 })
}

func compareEndpoints(a, b *model.Endpoint) int {
	return cmp.Or(cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.ServicePort, b.ServicePort),
		cmp.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
}

func compareNames(a, b model.Ref) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

func compareKeys(a, b objectKey) int {
	return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
}

// sortDiagnostics orders diagnostics by file, object and field and drops exact repeats,
// so that the snapshot (and its hash) does not depend on reading order.
func sortDiagnostics(ds []model.Diagnostic) []model.Diagnostic {
	slices.SortStableFunc(ds, func(a, b model.Diagnostic) int {
		return cmp.Or(cmp.Compare(a.Source.File, b.Source.File), cmp.Compare(a.Source.Kind, b.Source.Kind),
			cmp.Compare(a.Source.Namespace, b.Source.Namespace), cmp.Compare(a.Source.Name, b.Source.Name),
			cmp.Compare(a.Field, b.Field), cmp.Compare(a.Severity, b.Severity), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(ds)
}
