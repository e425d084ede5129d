package xds

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// classHash makes go-control-plane key snapshots by proxy class, not by node: every proxy
// of a class shares one snapshot.
type classHash struct{}

func (classHash) ID(node *corev3.Node) string { return ClassOf(node).Key() }

var _ cachev3.NodeHash = classHash{}

// nackHoldingCache wraps the snapshot cache so that a NACK does not trigger a resend.
//
// In state-of-the-world xDS a NACK carries the last version the proxy accepted, which
// differs from the snapshot's, so the stock cache answers at once with the very config the
// proxy just rejected — forever. Here, a NACK of the current version is treated as
// "up to date": the watch stays open and the proxy hears from us again only when its
// class's config changes.
type nackHoldingCache struct {
	cachev3.SnapshotCache
	reg *registry
}

func (c *nackHoldingCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		if v := c.reg.nackedVersion(req.GetNode().GetId(), req.GetTypeUrl()); v != "" {
			if snap, err := c.GetSnapshot(classHash{}.ID(req.GetNode())); err == nil && snap.GetVersion(req.GetTypeUrl()) == v {
				held := proto.Clone(req).(*cachev3.Request)
				held.VersionInfo = v
				req = held
			}
		}
	}
	return c.SnapshotCache.CreateWatch(req, sub, ch)
}
