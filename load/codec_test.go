package load

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestLightCodecDecodesWhatTheClientReads(t *testing.T) {
	var in discoveryv3.DiscoveryResponse
	in.VersionInfo, in.TypeUrl, in.Nonce, in.Canary = "v7", "type.googleapis.com/envoy.config.cluster.v3.Cluster", "42", true
	for _, name := range []string{"a", "b"} {
		a, err := anypb.New(&clusterv3.Cluster{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		in.Resources = append(in.Resources, a)
	}
	b, err := proto.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out discoveryv3.DiscoveryResponse
	if err := newLightCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &out); err != nil {
		t.Fatal(err)
	}
	if out.VersionInfo != "v7" || out.TypeUrl != in.TypeUrl || out.Nonce != "42" || len(out.Resources) != 2 {
		t.Fatalf("decoded %v", &out)
	}
	for i, a := range out.Resources {
		var c clusterv3.Cluster
		if err := a.UnmarshalTo(&c); err != nil || c.Name != []string{"a", "b"}[i] {
			t.Fatalf("resource %d: %v, %v", i, c.Name, err)
		}
	}
	if err := newLightCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)-3])}, &discoveryv3.DiscoveryResponse{}); err == nil {
		t.Fatal("a truncated response decoded without error")
	}
}
