package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

type srv struct {
	metricsv3.UnimplementedMetricsServiceServer
	mu   sync.Mutex
	last map[string]string
	n    int
}

func (s *srv) StreamMetrics(st grpc.ClientStreamingServer[metricsv3.StreamMetricsMessage, metricsv3.StreamMetricsResponse]) error {
	for {
		m, err := st.Recv()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.n++
		fmt.Fprintf(os.Stderr, "msg %d: id=%v families=%d bytes=%d\n", s.n, m.GetIdentifier().GetNode().GetId(), len(m.GetEnvoyMetrics()), proto.Size(m))
		for _, f := range m.GetEnvoyMetrics() {
			if f.GetName() == "cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_time" {
				h := f.GetMetric()[0].GetHistogram()
				fmt.Fprintf(os.Stderr, "  hist count=%d sum=%v ts=%d\n", h.GetSampleCount(), h.GetSampleSum(), f.GetMetric()[0].GetTimestampMs())
			}
			if f.GetName() == "cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_completed" {
				fmt.Fprintf(os.Stderr, "  completed=%v\n", f.GetMetric()[0].GetCounter().GetValue())
			}
			if strings.Contains(f.GetName(), "outbound|") || s.n == 1 && strings.HasPrefix(f.GetName(), "cluster.weir") {
				s.last[f.GetName()] = f.String()
			}
		}
		s.mu.Unlock()
	}
}

func main() {
	lis, _ := net.Listen("tcp", "127.0.0.1:19900")
	g := grpc.NewServer()
	s := &srv{last: map[string]string{}}
	metricsv3.RegisterMetricsServiceServer(g, s)
	go g.Serve(lis)
	var cnt int
	var mu sync.Mutex
	go http.ListenAndServe("127.0.0.1:19901", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cnt++
		c := cnt
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/slow") {
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(3 * time.Millisecond)
		if c%4 == 0 {
			w.WriteHeader(500)
		}
	}))
	go http.ListenAndServe("127.0.0.1:19902", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, v := range s.last {
			if r.URL.Query().Get("q") == "" || strings.Contains(k, r.URL.Query().Get("q")) {
				fmt.Fprintf(w, "%s\n   %s\n", k, v)
			}
		}
	}))
	time.Sleep(time.Duration(1 << 62))
	_ = s
}
