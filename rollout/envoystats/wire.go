package envoystats

import (
	"bytes"
	"fmt"
	"strings"

	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	promclient "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// statKind is which of the three statistics the built-in metrics need a family holds.
type statKind uint8

const (
	// statCompleted is the counter cluster.<c>.upstream_rq_completed: every request the
	// cluster answered, including Envoy's own 503s and 504s (connect failure, no healthy
	// host, overflow, timeout). A retried request counts once, with its final answer.
	statCompleted statKind = iota
	// stat5xx is the counter cluster.<c>.upstream_rq_5xx: those answered 5xx, whether by
	// the upstream or by Envoy on its behalf.
	stat5xx
	// statTime is the histogram cluster.<c>.upstream_rq_time in milliseconds. Envoy sends
	// it per flush interval, not cumulatively, and records no time for a request it
	// answered itself.
	statTime
)

// clusterStatPrefix is where every kept stat name starts: weir's outbound clusters are
// "outbound|<port>|<subset>|<host>".
var clusterStatPrefix = []byte("cluster.outbound|")

// keptSuffixes are matched at the end of a name, because the cluster name in the middle
// holds dots of its own.
var keptSuffixes = [...]struct {
	suffix []byte
	kind   statKind
}{
	{[]byte(".upstream_rq_completed"), statCompleted},
	{[]byte(".upstream_rq_5xx"), stat5xx},
	{[]byte(".upstream_rq_time"), statTime},
}

// parseStatName returns the cluster and kind of a stat weir keeps; ok is false for every
// other stat, which is nearly all of them, without allocating.
func parseStatName(name []byte) (cluster []byte, kind statKind, ok bool) {
	if !bytes.HasPrefix(name, clusterStatPrefix) {
		return nil, 0, false
	}
	for _, k := range keptSuffixes {
		if bytes.HasSuffix(name, k.suffix) {
			c := name[len("cluster.") : len(name)-len(k.suffix)]
			if len(c) == len("outbound|") {
				return nil, 0, false
			}
			return c, k.kind, true
		}
	}
	return nil, 0, false
}

// envoySubScopes are the scopes Envoy nests under a cluster's for the same statistics
// split another way: cluster.<c>.external.upstream_rq_5xx and so on, and
// cluster.<c>.zone.<from>.<to>.upstream_rq_time.
var envoySubScopes = []string{".external", ".internal", ".canary", ".retry"}

// dropSubScopes removes the updates whose "cluster" is another cluster of the message
// followed by one of Envoy's sub-scopes. Only the name tells them apart, and a cluster
// may itself end in ".internal"; but when both "c" and "c.internal" carry the same stat,
// Envoy keeps one counter for the two names anyway, so dropping the longer is exact.
// Keeping them would cost memory and nothing else: no query names them.
func dropSubScopes(us []update) []update {
	clusters := make(map[string]bool, len(us))
	for _, u := range us {
		clusters[u.cluster] = true
	}
	out := us[:0]
	for _, u := range us {
		if !isSubScope(u.cluster, clusters) {
			out = append(out, u)
		}
	}
	clear(us[len(out):])
	return out
}

func isSubScope(c string, clusters map[string]bool) bool {
	for _, s := range envoySubScopes {
		if base, ok := strings.CutSuffix(c, s); ok && clusters[base] {
			return true
		}
	}
	for i := 0; ; {
		j := strings.Index(c[i:], ".zone.")
		if j < 0 {
			return false
		}
		if clusters[c[:i+j]] {
			return true
		}
		i += j + 1
	}
}

// update is one kept stat of one message.
type update struct {
	cluster string
	kind    statKind
	counter uint64     // statCompleted, stat5xx: the cumulative value
	hist    *histogram // statTime: the flush interval's samples
}

// histogram is Envoy's interval histogram: cumulative counts per finite upper bound, in
// increasing order, and the number of samples (the +Inf bucket).
type histogram struct {
	bounds []float64
	cum    []uint64
	count  uint64
}

// message is what weir keeps of one StreamMetricsMessage.
type message struct {
	nodeID   string // set on a stream's first message only
	families int
	// flushMs is the flush's timestamp_ms, read only when asked for; 0 when unknown.
	flushMs int64
	updates []update
	// noBuckets counts kept histograms sent without buckets (histogram_emit_mode is not
	// HISTOGRAM).
	noBuckets int
}

// StreamMetricsMessage field numbers.
const (
	identifierField   = 1
	envoyMetricsField = 2
	familyNameField   = 1
)

// readMessage decodes the encoded StreamMetricsMessage b. Only the families parseStatName
// keeps are decoded; the name of each other family is looked at in place. withFlushTime
// also decodes one family for the flush's timestamp when no kept family gave it.
func readMessage(b []byte, withFlushTime bool) (message, error) {
	var m message
	var first []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return m, fmt.Errorf("decode metrics message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return m, fmt.Errorf("decode metrics message: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return m, fmt.Errorf("decode metrics message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case identifierField:
			var id metricsv3.StreamMetricsMessage_Identifier
			if err := proto.Unmarshal(v, &id); err != nil {
				return m, fmt.Errorf("decode metrics identifier: %w", err)
			}
			m.nodeID = id.GetNode().GetId()
		case envoyMetricsField:
			m.families++
			if first == nil {
				first = v
			}
			if err := m.addFamily(v); err != nil {
				return m, err
			}
		}
	}
	if withFlushTime && m.flushMs == 0 && first != nil {
		var f promclient.MetricFamily
		if err := proto.Unmarshal(first, &f); err != nil {
			return m, fmt.Errorf("decode metric family: %w", err)
		}
		m.flushMs = flushMs(&f)
	}
	m.updates = dropSubScopes(m.updates)
	return m, nil
}

// addFamily keeps the encoded MetricFamily v if its name is one of the kept stats.
func (m *message) addFamily(v []byte) error {
	cluster, kind, ok := parseStatName(familyName(v))
	if !ok {
		return nil
	}
	var f promclient.MetricFamily
	if err := proto.Unmarshal(v, &f); err != nil {
		return fmt.Errorf("decode metric family: %w", err)
	}
	if len(f.GetMetric()) == 0 {
		return nil
	}
	if m.flushMs == 0 {
		m.flushMs = flushMs(&f)
	}
	// With emit_tags_as_labels off, each family holds one metric without labels.
	metric := f.GetMetric()[0]
	u := update{cluster: string(cluster), kind: kind}
	switch {
	case kind == statTime && f.GetType() == promclient.MetricType_HISTOGRAM:
		h := metric.GetHistogram()
		if len(h.GetBucket()) == 0 {
			m.noBuckets++
			return nil
		}
		u.hist = readHistogram(h)
	case kind != statTime && f.GetType() == promclient.MetricType_COUNTER:
		u.counter = uint64(metric.GetCounter().GetValue())
	default:
		return nil
	}
	m.updates = append(m.updates, u)
	return nil
}

// familyName is the name field of an encoded MetricFamily, nil if it has none.
func familyName(b []byte) []byte {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == familyNameField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			return v
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}

func flushMs(f *promclient.MetricFamily) int64 {
	if ms := f.GetMetric(); len(ms) > 0 {
		return ms[0].GetTimestampMs()
	}
	return 0
}

func readHistogram(h *promclient.Histogram) *histogram {
	out := &histogram{count: h.GetSampleCount()}
	for _, b := range h.GetBucket() {
		out.bounds = append(out.bounds, b.GetUpperBound())
		out.cum = append(out.cum, b.GetCumulativeCount())
	}
	return out
}
