package load

import (
	"errors"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// lightCodec decodes state-of-the-world discovery responses with one copy and no
// per-field work: resources keep their encoded bytes, sliced from the received message.
// The load client shares the machine with the server it measures; every cycle it saves
// is one the server gets. Everything else goes through gRPC's proto codec.
type lightCodec struct{ encoding.CodecV2 }

func newLightCodec() lightCodec { return lightCodec{encoding.GetCodecV2(protoenc.Name)} }

func (c lightCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*discoveryv3.DiscoveryResponse)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	return decodeResponse(data.Materialize(), r) // Materialize copies: the bytes are ours
}

var errBadWire = errors.New("malformed discovery response")

// decodeResponse fills the fields of a DiscoveryResponse the client reads; the resources'
// values alias b.
func decodeResponse(b []byte, r *discoveryv3.DiscoveryResponse) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errBadWire
		}
		b = b[n:]
		if typ != protowire.BytesType || (num != 1 && num != 2 && num != 4 && num != 5) {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errBadWire
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errBadWire
		}
		b = b[n:]
		switch num {
		case 1:
			r.VersionInfo = string(v)
		case 2:
			a, err := decodeAny(v)
			if err != nil {
				return err
			}
			r.Resources = append(r.Resources, a)
		case 4:
			r.TypeUrl = string(v)
		case 5:
			r.Nonce = string(v)
		}
	}
	return nil
}

func decodeAny(b []byte) (*anypb.Any, error) {
	a := &anypb.Any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errBadWire
		}
		b = b[n:]
		if typ != protowire.BytesType || (num != 1 && num != 2) {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, errBadWire
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, errBadWire
		}
		b = b[n:]
		if num == 1 {
			a.TypeUrl = string(v)
		} else {
			a.Value = v
		}
	}
	return a, nil
}
