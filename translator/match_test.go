package translator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

func TestMatchApplies(t *testing.T) {
	svc := kubeService("reviews", "default", 80, 9080)
	on80 := vhostTarget{svc: svc, port: svc.Ports[0]}
	class := model.ProxyClass{Role: model.RoleSidecar, Namespace: "shop", Labels: map[string]string{"app": "frontend", "version": "v1"}}
	for _, tc := range []struct {
		name  string
		spec  string
		want  bool
		diags []string
	}{
		{"no source or port condition", `uri: {prefix: /}`, true, nil},
		{"the virtual host's port", `port: 80`, true, nil},
		{"another port of the service", `port: 9080`, false, nil},
		{"a port the service does not have", `port: 7070`, false, []string{"warning spec.http[0].match[0].port"}},
		{"labels this proxy has", `sourceLabels: {app: frontend}`, true, nil},
		{"one label differs", `sourceLabels: {app: frontend, version: v2}`, false, nil},
		{"a label this proxy lacks", `sourceLabels: {team: a}`, false, nil},
		{"this proxy's namespace", `sourceNamespace: shop`, true, nil},
		{"another namespace", `sourceNamespace: default`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &networking.HTTPMatchRequest{}
			parseSpec(t, tc.spec, m)
			tr := &translation{class: class, diags: &diagnostics{}}
			if got := tr.matchApplies(testSource, "spec.http[0].match[0]", m, on80); got != tc.want {
				t.Errorf("matchApplies = %v, want %v", got, tc.want)
			}
			if diff := cmp.Diff(tc.diags, problems(tr.diags.list)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}
