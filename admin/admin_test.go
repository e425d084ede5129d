package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-mesh/weir/xds"
)

func testConfig(node string) (map[string][]types.Resource, error) {
	if node != "sidecar-1" {
		return nil, fmt.Errorf("%w: %q", xds.ErrUnknownProxy, node)
	}
	route := &routev3.RouteConfiguration{Name: "outbound", VirtualHosts: []*routev3.VirtualHost{{
		Name: "reviews:80", Domains: []string{"reviews"},
		Routes: []*routev3.Route{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
				WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
					{Name: "v2", Weight: wrapperspb.UInt32(10)}, {Name: "v1", Weight: wrapperspb.UInt32(90)},
				}}}}},
		}},
	}}}
	return map[string][]types.Resource{
		"cds": {&clusterv3.Cluster{Name: "v1"}, &clusterv3.Cluster{Name: "v2"}},
		"rds": {route},
	}, nil
}

func TestDebugConfig(t *testing.T) {
	srv := httptest.NewServer(Handler(Sources{Config: testConfig, Ready: func() bool { return true }}))
	defer srv.Close()
	tests := []struct {
		query    string
		status   int
		contains []string
	}{
		{"?node=sidecar-1&type=routes&format=table", 200, []string{"reviews:80", "prefix=/", "v1:90 v2:10"}},
		{"?node=sidecar-1&type=clusters", 200, []string{`"cds"`, `"name":"v1"`}},
		{"?node=sidecar-1", 200, []string{`"cds"`, `"rds"`, `"eds": []`}},
		{"?node=nobody", 404, []string{"no connected proxy"}},
		{"?node=sidecar-1&type=secrets", 400, []string{"unknown type"}},
		{"", 400, []string{"missing ?node"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/debug/config" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			compact := strings.ReplaceAll(string(body), `": `, `":`)
			for _, want := range tc.contains {
				if !strings.Contains(string(body), want) && !strings.Contains(compact, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
		})
	}
}
