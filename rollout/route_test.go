package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
)

const fqdn = "reviews.default.svc.cluster.local"

func snapWith(vss ...*networking.VirtualService) *model.Snapshot {
	snap := &model.Snapshot{
		Services: []*model.Service{{Hostname: fqdn, Name: "reviews", Namespace: "default"}},
		DestinationRules: []*model.DestinationRule{{Source: model.Ref{Kind: "DestinationRule", Namespace: "default", Name: "reviews"},
			Spec: &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}, {Name: "v2"}}}}},
	}
	for _, vs := range vss {
		snap.VirtualServices = append(snap.VirtualServices, &model.VirtualService{Source: model.Ref{Kind: "VirtualService", Namespace: "default", Name: "reviews"}, Spec: vs})
	}
	return snap
}

func vsYAML(t *testing.T, y string) *networking.VirtualService {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	vs := &networking.VirtualService{}
	if err := protojsonUnmarshal(js, vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func rolloutOf(mut ...func(*v1alpha1.RolloutSpec)) *model.Rollout {
	return &model.Rollout{Source: model.Ref{Kind: "Rollout", Namespace: "default", Name: "reviews"}, Spec: canarySpec(mut...)}
}

func TestApply(t *testing.T) {
	st := State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25}
	tests := []struct {
		name    string
		snap    *model.Snapshot
		rollout *model.Rollout
		state   State
		want    string // the VirtualService weir serves, as YAML
		errs    []string
	}{
		{
			name: "no VirtualService: weir owns the default route", snap: snapWith(), rollout: rolloutOf(), state: st,
			want: `hosts: [reviews.default.svc.cluster.local]
http:
- name: rollout-reviews
  route:
  - {destination: {host: reviews.default.svc.cluster.local, subset: v1}, weight: 75}
  - {destination: {host: reviews.default.svc.cluster.local, subset: v2}, weight: 25}
`,
		},
		{
			name: "the catch-all route of the host's VirtualService, keeping its port and retries",
			snap: snapWith(vsYAML(t, `hosts: [reviews]
http:
- match: [{headers: {end-user: {exact: jason}}}]
  route: [{destination: {host: reviews, subset: v2}}]
- retries: {attempts: 2}
  route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]
`)), rollout: rolloutOf(), state: st,
			want: `hosts: [reviews]
http:
- match: [{headers: {end-user: {exact: jason}}}]
  route: [{destination: {host: reviews, subset: v2}}]
- retries: {attempts: 2}
  route:
  - {destination: {host: reviews.default.svc.cluster.local, subset: v1, port: {number: 9080}}, weight: 75}
  - {destination: {host: reviews.default.svc.cluster.local, subset: v2, port: {number: 9080}}, weight: 25}
`,
		},
		{
			name: "a named route of a named VirtualService",
			snap: snapWith(vsYAML(t, `hosts: [reviews]
http:
- name: primary
  route: [{destination: {host: reviews, subset: v1}}]
- route: [{destination: {host: reviews, subset: v1}}]
`)), rollout: rolloutOf(func(s *v1alpha1.RolloutSpec) {
				s.VirtualService = &v1alpha1.VirtualServiceRef{Name: "reviews", Route: "primary"}
			}), state: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 100},
			want: `hosts: [reviews]
http:
- name: primary
  route:
  - {destination: {host: reviews.default.svc.cluster.local, subset: v1}}
  - {destination: {host: reviews.default.svc.cluster.local, subset: v2}, weight: 100}
- route: [{destination: {host: reviews, subset: v1}}]
`,
		},
		{
			name: "A/B: a match route to the canary before the default route",
			snap: snapWith(), state: State{Phase: progressing, Stable: "v1", Canary: "v2", Match: true},
			rollout: rolloutOf(func(s *v1alpha1.RolloutSpec) {
				s.Strategy = v1alpha1.Strategy{ABTesting: &v1alpha1.ABStrategy{Iterations: 1, Match: []v1alpha1.Match{
					{Headers: map[string]v1alpha1.StringMatch{"x-user-type": {Exact: "beta"}}},
					{Cookies: map[string]v1alpha1.StringMatch{"type": {Exact: "insider"}}}}}}
			}),
			want: `hosts: [reviews.default.svc.cluster.local]
http:
- name: rollout-reviews-ab
  match:
  - headers: {x-user-type: {exact: beta}}
  - headers: {cookie: {regex: '^(?:.*;\s*)?type=insider(?:;.*)?$'}}
  route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}, weight: 100}]
- name: rollout-reviews
  route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}, weight: 100}]
`,
		},
		{
			name: "blue/green: users on stable, a copy of every request to the canary on the same port, in place of the route's own mirror",
			snap: snapWith(vsYAML(t, `hosts: [reviews]
http:
- route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]
  mirror: {host: ratings}
  mirrorPercent: 5
`)), state: State{Phase: progressing, Stable: "v1", Canary: "v2", Mirror: true},
			rollout: rolloutOf(func(s *v1alpha1.RolloutSpec) {
				s.Strategy = v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreenStrategy{Iterations: 2}}
			}),
			want: `hosts: [reviews]
http:
- route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1, port: {number: 9080}}, weight: 100}]
  mirror: {host: reviews.default.svc.cluster.local, subset: v2, port: {number: 9080}}
  mirrorPercentage: {value: 100}
`,
		},
		{
			name:    "a canary subset no DestinationRule defines: everything to the stable subset, never to the whole service",
			snap:    snapWith(vsYAML(t, "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reviews, subset: v1}}]\n")),
			rollout: rolloutOf(), state: State{Phase: progressing, Stable: "v1", Canary: "v9", CanaryWeight: 25},
			want: "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}, weight: 100}]\n",
			errs: []string{`no DestinationRule of reviews.default.svc.cluster.local defines subset "v9"; the rollout cannot move traffic to it`},
		},
		{
			name:    "a stable subset no DestinationRule defines leaves the routes as written",
			snap:    snapWith(vsYAML(t, "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reviews, subset: v1}}]\n")),
			rollout: rolloutOf(), state: State{Phase: progressing, Stable: "v0", Canary: "v2", CanaryWeight: 25},
			want: "hosts: [reviews]\nhttp:\n- route: [{destination: {host: reviews, subset: v1}}]\n",
			errs: []string{`no DestinationRule of reviews.default.svc.cluster.local defines subset "v0"; the rollout cannot move traffic to it`},
		},
		{
			name: "a VirtualService that does not exist",
			snap: snapWith(), state: st,
			rollout: rolloutOf(func(s *v1alpha1.RolloutSpec) { s.VirtualService = &v1alpha1.VirtualServiceRef{Name: "nope"} }),
			errs:    []string{"VirtualService default/nope not found; the rollout does not move traffic"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneSnap(tt.snap)
			got, diags := Apply(tt.snap, []Shift{{Rollout: tt.rollout, State: tt.state}})
			var msgs []string
			for _, d := range diags {
				msgs = append(msgs, d.Message)
			}
			if diff := cmp.Diff(tt.errs, msgs); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if tt.want != "" {
				if len(got.VirtualServices) != 1 {
					t.Fatalf("got %d virtual services", len(got.VirtualServices))
				}
				if diff := cmp.Diff(vsYAML(t, tt.want), got.VirtualServices[0].Spec, protocmp.Transform()); diff != "" {
					t.Errorf("virtual service (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(before, tt.snap, protocmp.Transform(), cmp.AllowUnexported()); diff != "" {
				t.Errorf("Apply changed its input:\n%s", diff)
			}
		})
	}
}

func cloneSnap(s *model.Snapshot) *model.Snapshot {
	c := *s
	c.VirtualServices = nil
	for _, vs := range s.VirtualServices {
		c.VirtualServices = append(c.VirtualServices, &model.VirtualService{Source: vs.Source, Spec: protoClone(vs.Spec)})
	}
	return &c
}
