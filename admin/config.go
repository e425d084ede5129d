package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weir-mesh/weir/xds"
)

// typeAliases maps what people type to the short type names the server uses.
var typeAliases = map[string]string{
	"cds": "cds", "cluster": "cds", "clusters": "cds",
	"eds": "eds", "endpoint": "eds", "endpoints": "eds",
	"lds": "lds", "listener": "lds", "listeners": "lds",
	"rds": "rds", "route": "rds", "routes": "rds",
	"srds": "srds", "scope": "srds", "scopes": "srds",
}

// configHandler serves /debug/config?node=ID[&type=routes][&format=table]: what weir is
// serving one proxy, as JSON (Envoy's own field names) or as a table a person reads.
func configHandler(config func(string) (map[string][]types.Resource, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		node := r.URL.Query().Get("node")
		if node == "" {
			http.Error(w, "missing ?node=<node id>", http.StatusBadRequest)
			return
		}
		all, err := config(node)
		if errors.Is(err, xds.ErrUnknownProxy) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		kinds := []string{"cds", "eds", "lds", "srds", "rds"}
		if t := r.URL.Query().Get("type"); t != "" && t != "all" {
			k, ok := typeAliases[t]
			if !ok {
				http.Error(w, fmt.Sprintf("unknown type %q: want clusters, endpoints, listeners, scopes or routes", t), http.StatusBadRequest)
				return
			}
			kinds = []string{k}
		}
		if r.URL.Query().Get("format") == "table" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			for _, k := range kinds {
				writeTable(w, k, all[k])
			}
			return
		}
		out := map[string][]json.RawMessage{}
		for _, k := range kinds {
			out[k] = []json.RawMessage{}
			for _, res := range all[k] {
				b, err := protojson.Marshal(res)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				out[k] = append(out[k], b)
			}
		}
		writeJSON(w, out)
	}
}

// writeTable renders one type the way `istioctl proxy-config` does: one line per thing.
func writeTable(w io.Writer, kind string, rs []types.Resource) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch kind {
	case "cds":
		fmt.Fprintln(tw, "CLUSTER\tTYPE\tLB\tMAX CONN\tMAX PENDING\tMAX REQ\tOUTLIER (5XX/GW)")
		for _, r := range rs {
			c := r.(*clusterv3.Cluster)
			th := c.GetCircuitBreakers().GetThresholds()
			limits := []string{"-", "-", "-"}
			if len(th) > 0 {
				limits = []string{num(th[0].GetMaxConnections().GetValue()), num(th[0].GetMaxPendingRequests().GetValue()), num(th[0].GetMaxRequests().GetValue())}
			}
			outlier := "-"
			if od := c.GetOutlierDetection(); od != nil {
				outlier = fmt.Sprintf("%d/%d", od.GetConsecutive_5Xx().GetValue(), od.GetConsecutiveGatewayFailure().GetValue())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.GetName(), c.GetType(), c.GetLbPolicy(), limits[0], limits[1], limits[2], outlier)
		}
	case "eds":
		fmt.Fprintln(tw, "CLUSTER\tENDPOINT\tLOCALITY")
		for _, r := range rs {
			cla := r.(*endpointv3.ClusterLoadAssignment)
			for _, loc := range cla.GetEndpoints() {
				for _, ep := range loc.GetLbEndpoints() {
					sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
					fmt.Fprintf(tw, "%s\t%s:%d\t%s/%s\n", cla.GetClusterName(), sa.GetAddress(), sa.GetPortValue(), loc.GetLocality().GetRegion(), loc.GetLocality().GetZone())
				}
			}
		}
	case "lds":
		fmt.Fprintln(tw, "LISTENER\tADDRESS")
		for _, r := range rs {
			l := r.(*listenerv3.Listener)
			sa := l.GetAddress().GetSocketAddress()
			fmt.Fprintf(tw, "%s\t%s:%d\n", l.GetName(), sa.GetAddress(), sa.GetPortValue())
		}
	case "srds":
		fmt.Fprintln(tw, "HOST\tROUTE CONFIG")
		for _, r := range rs {
			sc := r.(*routev3.ScopedRouteConfiguration)
			var key []string
			for _, f := range sc.GetKey().GetFragments() {
				key = append(key, f.GetStringKey())
			}
			fmt.Fprintf(tw, "%s\t%s\n", strings.Join(key, ","), sc.GetRouteConfigurationName())
		}
	case "rds":
		fmt.Fprintln(tw, "ROUTE CONFIG\tVIRTUAL HOST\tMATCH\tDESTINATION")
		for _, r := range rs {
			rc := r.(*routev3.RouteConfiguration)
			for _, vh := range rc.GetVirtualHosts() {
				for _, rt := range vh.GetRoutes() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rc.GetName(), vh.GetName(), matchString(rt.GetMatch()), destString(rt))
				}
			}
		}
	}
	fmt.Fprintln(tw)
}

func num(v uint32) string {
	if v == ^uint32(0) {
		return "max"
	}
	return fmt.Sprint(v)
}

func matchString(m *routev3.RouteMatch) string {
	parts := []string{}
	switch {
	case m.GetPath() != "":
		parts = append(parts, "path="+m.GetPath())
	case m.GetSafeRegex() != nil:
		parts = append(parts, "path~"+m.GetSafeRegex().GetRegex())
	default:
		parts = append(parts, "prefix="+m.GetPrefix())
	}
	for _, h := range m.GetHeaders() {
		op := "="
		if h.GetInvertMatch() {
			op = "!="
		}
		sm := h.GetStringMatch()
		v := sm.GetExact() + sm.GetPrefix() + sm.GetSafeRegex().GetRegex()
		parts = append(parts, h.GetName()+op+v)
	}
	for _, q := range m.GetQueryParameters() {
		sm := q.GetStringMatch()
		parts = append(parts, "?"+q.GetName()+"="+sm.GetExact()+sm.GetPrefix()+sm.GetSafeRegex().GetRegex())
	}
	return strings.Join(parts, " ")
}

func destString(rt *routev3.Route) string {
	ra := rt.GetRoute()
	if ra == nil {
		return "(no route action)"
	}
	if c := ra.GetCluster(); c != "" {
		return c
	}
	var parts []string
	for _, wc := range ra.GetWeightedClusters().GetClusters() {
		parts = append(parts, fmt.Sprintf("%s:%d", wc.GetName(), wc.GetWeight().GetValue()))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
