package rollout

import (
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
)

func protojsonUnmarshal(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }

func protoClone(vs *networking.VirtualService) *networking.VirtualService {
	return proto.Clone(vs).(*networking.VirtualService)
}
