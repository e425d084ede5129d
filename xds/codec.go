package xds

import (
	"unique"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// internCodec is gRPC's proto codec, except that responses with shared encoded resources
// are written without copying them, and the resource names in discovery requests are
// interned. Every sidecar of a mesh subscribes to the same thousands of EDS names and
// the stream keeps them for as long as it lives; interned, 2,000 proxies share one copy of
// each name instead of holding 2,000.
type internCodec struct{ encoding.CodecV2 }

func newInternCodec() internCodec { return internCodec{encoding.GetCodecV2(protoenc.Name)} }

// Marshal sends a discovery response whose resources are shared encoded bytes (see
// wireBlob) as its own small header followed by those bytes, uncopied.
func (c internCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*discoveryv3.DiscoveryResponse)
	if !ok || len(r.GetResources()) > 0 {
		return c.CodecV2.Marshal(v)
	}
	shared := r.ProtoReflect().GetUnknown()
	if len(shared) == 0 {
		return c.CodecV2.Marshal(v)
	}
	head, err := proto.Marshal(&discoveryv3.DiscoveryResponse{
		VersionInfo: r.GetVersionInfo(), Canary: r.GetCanary(), TypeUrl: r.GetTypeUrl(), Nonce: r.GetNonce(),
		ControlPlane: r.GetControlPlane(), ResourceErrors: r.GetResourceErrors(),
	})
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(shared)}, nil
}

func (c internCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		return err
	}
	switch req := v.(type) {
	case *discoveryv3.DiscoveryRequest:
		intern(req.ResourceNames)
	case *discoveryv3.DeltaDiscoveryRequest:
		intern(req.ResourceNamesSubscribe)
		intern(req.ResourceNamesUnsubscribe)
		if len(req.InitialResourceVersions) > 0 {
			m := make(map[string]string, len(req.InitialResourceVersions))
			for k, v := range req.InitialResourceVersions {
				m[unique.Make(k).Value()] = v
			}
			req.InitialResourceVersions = m
		}
	}
	return nil
}

func intern(names []string) {
	for i, n := range names {
		names[i] = unique.Make(n).Value()
	}
}
