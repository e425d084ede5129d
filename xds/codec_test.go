package xds

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A request decoded with its names looked up by their bytes equals the plain decoding,
// and two requests with the same names share one list.
func TestUnmarshalRequestSharesNameLists(t *testing.T) {
	req := &discoveryv3.DiscoveryRequest{
		VersionInfo: "v1", ResponseNonce: "7", TypeUrl: resourcev3.EndpointType,
		Node:          &corev3.Node{Id: "sidecar-1"},
		ResourceNames: []string{"outbound|80|v1|a", "outbound|80|v2|a", "outbound|80||b"},
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var got1, got2 discoveryv3.DiscoveryRequest
	if err := unmarshalRequest(append([]byte(nil), b...), &got1); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalRequest(append([]byte(nil), b...), &got2); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got1, req) || !proto.Equal(&got2, req) {
		t.Fatalf("decoded %v and %v, want %v", &got1, &got2, req)
	}
	if &got1.ResourceNames[0] != &got2.ResourceNames[0] {
		t.Error("two requests with the same names hold two lists")
	}

	none := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, VersionInfo: "v1"}
	nb, _ := proto.Marshal(none)
	var got3 discoveryv3.DiscoveryRequest
	if err := unmarshalRequest(nb, &got3); err != nil || !proto.Equal(&got3, none) || got3.ResourceNames != nil {
		t.Errorf("a request without names: %v, %v", &got3, err)
	}
}

// Names interleaved with other fields (legal, if no encoder does it) still decode.
func TestUnmarshalRequestInterleavedNames(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, resourceNamesField, protowire.BytesType)
	b = protowire.AppendString(b, "a")
	b = protowire.AppendTag(b, 4, protowire.BytesType) // type_url
	b = protowire.AppendString(b, resourcev3.RouteType)
	b = protowire.AppendTag(b, resourceNamesField, protowire.BytesType)
	b = protowire.AppendString(b, "b")
	var got discoveryv3.DiscoveryRequest
	if err := unmarshalRequest(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.TypeUrl != resourcev3.RouteType || len(got.ResourceNames) != 2 || got.ResourceNames[0] != "a" || got.ResourceNames[1] != "b" {
		t.Errorf("decoded %v", &got)
	}
}

// A name that is not UTF-8 is refused, as the proto codec refuses it.
func TestUnmarshalRequestRejectsInvalidNames(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, resourceNamesField, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{0xff, 0xfe})
	var got discoveryv3.DiscoveryRequest
	if err := unmarshalRequest(b, &got); err == nil {
		t.Errorf("decoded invalid UTF-8 as %q", got.ResourceNames)
	}
	if err := unmarshalRequest([]byte{0x1a, 0x05, 'a'}, &got); err == nil {
		t.Error("decoded a truncated name")
	}
}
