package xds

import (
	"errors"
	"sync"
	"unicode/utf8"
	"unique"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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
	if req, ok := v.(*discoveryv3.DiscoveryRequest); ok {
		return unmarshalRequest(data.Materialize(), req)
	}
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		return err
	}
	switch req := v.(type) {
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

// resourceNamesField is DiscoveryRequest.resource_names' field number.
const resourceNamesField = 3

// unmarshalRequest decodes a state-of-the-world request. Its resource names, usually the
// same list the stream (and every stream of its class) sent last time, are looked up by
// their encoded bytes in a table of lists already decoded: an ACK of a large mesh's EDS
// names costs one map lookup instead of decoding, validating and interning each name.
// The list returned is shared and must not be modified.
func unmarshalRequest(b []byte, req *discoveryv3.DiscoveryRequest) error {
	rest := b[:0:0]
	start, end := -1, -1 // the run of resource_names fields, when contiguous
	contiguous := true
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		field := b[i : i+n+m]
		if num == resourceNamesField && typ == protowire.BytesType {
			switch {
			case start < 0:
				start, end = i, i+n+m
			case i == end:
				end = i + n + m
			default:
				contiguous = false
			}
		} else {
			rest = append(rest, field...)
		}
		i += n + m
	}
	if !contiguous { // not how any encoder writes it; decode the plain way
		if err := proto.Unmarshal(b, req); err != nil {
			return err
		}
		intern(req.ResourceNames)
		return nil
	}
	if err := unmarshalShallow(rest, req); err != nil {
		return err
	}
	if start >= 0 {
		names, err := nameLists.get(b[start:end])
		if err != nil {
			return err
		}
		req.ResourceNames = names
	}
	return nil
}

// nameLists maps the encoded resource_names of a request to the decoded, interned list.
// Distinct lists are few (one per class and type, give or take a change in flight); the
// table is emptied when its keys pass maxNameListBytes, which only a churning mesh
// reaches.
var nameLists = &nameListTable{m: map[string][]string{}}

const maxNameListBytes = 16 << 20

type nameListTable struct {
	mu    sync.Mutex
	m     map[string][]string
	bytes int // of the keys
}

func (t *nameListTable) get(raw []byte) ([]string, error) {
	t.mu.Lock()
	names, ok := t.m[string(raw)] // no allocation for the lookup
	t.mu.Unlock()
	if ok {
		return names, nil
	}
	for b := raw; len(b) > 0; {
		_, _, n := protowire.ConsumeTag(b)
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		if !utf8.Valid(v) {
			return nil, errors.New("resource name is not valid UTF-8")
		}
		names = append(names, unique.Make(string(v)).Value())
		b = b[n+m:]
	}
	t.mu.Lock()
	if t.bytes+len(raw) > maxNameListBytes {
		clear(t.m)
		t.bytes = 0
	}
	t.m[string(raw)] = names
	t.bytes += len(raw)
	t.mu.Unlock()
	return names, nil
}

// nodeField is DiscoveryRequest.node's field number.
const nodeField = 2

// unmarshalShallow decodes b into req. A request that carries the node (a stream's first)
// is decoded on a goroutine of its own: the node's metadata is a nested Struct, decoding
// it runs deep, and the calling goroutine is the stream's handler, which keeps whatever
// stack it grew for as long as the stream lives (a stack shrinks only while under a
// quarter of it is used, and gRPC's call chain alone uses more than that of 8 KB).
func unmarshalShallow(b []byte, req *discoveryv3.DiscoveryRequest) error {
	if !hasField(b, nodeField) {
		return proto.Unmarshal(b, req)
	}
	done := make(chan error, 1)
	go func() { done <- proto.Unmarshal(b, req) }()
	return <-done
}

// hasField reports whether the top-level message b has field num.
func hasField(b []byte, num protowire.Number) bool {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return true // let the decoder report it
		}
		if n == num {
			return true
		}
		m := protowire.ConsumeFieldValue(n, typ, b[l:])
		if m < 0 {
			return true
		}
		b = b[l+m:]
	}
	return false
}
