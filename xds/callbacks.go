package xds

import (
	"context"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

var _ serverv3.Callbacks = (*callbacks)(nil)

// callbacks feed the registry from the stream events go-control-plane reports.
type callbacks struct {
	s *Server
}

func (c *callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	c.s.budget.open(id, ctx)
	return nil
}

func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	c.s.budget.open(deltaStream(id), ctx)
	return nil
}

func (c *callbacks) OnStreamClosed(id int64, node *corev3.Node) { c.closed(id, node) }
func (c *callbacks) OnDeltaStreamClosed(id int64, node *corev3.Node) {
	c.closed(deltaStream(id), node)
}

// deltaStream maps a delta stream id into its own range: go-control-plane numbers SotW
// and delta streams independently, so both have a stream 1.
func deltaStream(id int64) int64 { return -id }

func (c *callbacks) closed(id int64, node *corev3.Node) {
	c.s.budget.closed(id)
	{
		if key, last := c.s.reg.remove(id); last {
			c.s.forgetLater(key)
		}
		c.s.metrics.connected.Set(float64(c.s.reg.count()))
		c.s.log.Info("proxy disconnected", zap.String("node_id", node.GetId()), zap.Int64("stream", id))
	}
}

func (c *callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	c.request(id, req.GetNode(), false, req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	if req.GetResponseNonce() == "" && req.GetVersionInfo() != "" {
		// A proxy reconnecting (say, after a weir restart) says which version it holds.
		c.s.reg.holds(id, req.GetTypeUrl(), req.GetVersionInfo())
	}
	return nil
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	c.request(deltaStream(id), req.GetNode(), true, req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

func (c *callbacks) request(id int64, node *corev3.Node, delta bool, typeURL, nonce, errMsg string, isNack bool) {
	class, isNew := c.s.reg.identify(id, node, delta)
	if isNew {
		c.s.metrics.connected.Set(float64(c.s.reg.count()))
		c.s.log.Info("proxy connected", zap.String("node_id", node.GetId()), zap.Bool("delta", delta), zap.String("class", class.Key()))
		c.s.classSeen(class)
	}
	if nonce == "" {
		return // initial request for this type
	}
	c.s.budget.release(id) // the proxy has read what it answers
	if !isNack {
		c.s.reg.acked(id, typeURL, nonce)
		c.s.metrics.acks.WithLabelValues(shortType(typeURL)).Inc()
		return
	}
	n := Nack{Error: errMsg, At: time.Now().UTC()}
	version, fresh := c.s.reg.nacked(id, typeURL, nonce, n)
	if !fresh {
		return
	}
	sources := c.s.pub.attribute(class.Key(), typeURL, version, errMsg)
	c.s.reg.setNackSources(id, typeURL, sources)
	c.s.metrics.nacks.WithLabelValues(shortType(typeURL)).Inc()
	c.s.log.Error("proxy rejected config", zap.String("node_id", node.GetId()), zap.String("type_url", typeURL),
		zap.String("version", version), zap.Strings("sources", sources), zap.String("error", errMsg))
}

func (c *callbacks) OnStreamResponse(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	size := proto.Size(resp)
	// Shared encoded resources are written uncopied (internCodec): only the rest pins
	// memory per stream, so only the rest is counted against the budget.
	c.s.budget.acquire(id, int64(size-len(resp.ProtoReflect().GetUnknown())))
	c.s.reg.sent(id, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce())
	c.s.metrics.pushes.WithLabelValues(shortType(resp.GetTypeUrl())).Inc()
	c.s.metrics.sentBytes.WithLabelValues(shortType(resp.GetTypeUrl())).Add(float64(size))
	if ce := c.s.log.Check(zap.DebugLevel, "sent"); ce != nil {
		ce.Write(zap.String("node_id", req.GetNode().GetId()), zap.String("type_url", resp.GetTypeUrl()),
			zap.String("version", resp.GetVersionInfo()), zap.Int("resources", len(resp.GetResources())))
	}
}

func (c *callbacks) OnStreamDeltaResponse(id int64, req *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	size := proto.Size(resp)
	c.s.budget.acquire(deltaStream(id), int64(size))
	c.s.reg.sent(deltaStream(id), resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
	c.s.metrics.pushes.WithLabelValues(shortType(resp.GetTypeUrl())).Inc()
	c.s.metrics.sentBytes.WithLabelValues(shortType(resp.GetTypeUrl())).Add(float64(size))
	if ce := c.s.log.Check(zap.DebugLevel, "sent delta"); ce != nil {
		ce.Write(zap.String("node_id", req.GetNode().GetId()), zap.String("type_url", resp.GetTypeUrl()),
			zap.String("version", resp.GetSystemVersionInfo()), zap.Int("resources", len(resp.GetResources())),
			zap.Int("removed", len(resp.GetRemovedResources())))
	}
}

func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error { return nil }
func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {
}
