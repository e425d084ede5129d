package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// maxListed bounds the node ids a result lists, so a 10k-stream failure stays readable.
const maxListed = 20

// Result is what one run measured.
type Result struct {
	Target      string           `json:"target"`
	Streams     int              `json:"streams"`
	Classes     int              `json:"classes"`
	Delta       bool             `json:"delta"`
	Up          int              `json:"up"`               // streams with a first full config
	NotUp       []string         `json:"not_up,omitempty"` // some node ids without one
	Failed      int              `json:"failed"`           // streams that ended with an error
	Errors      []string         `json:"errors,omitempty"` // some of those errors
	FirstConfig Percentiles      `json:"time_to_first_config"`
	AllUp       float64          `json:"all_up_seconds,omitempty"` // from the start to the last stream's first full config, when all are up
	Ramp        float64          `json:"ramp_seconds,omitempty"`   // from the start to the last stream opened, when all are
	Convergence *Convergence     `json:"convergence,omitempty"`
	BytesByType map[string]int64 `json:"bytes_by_type"`
	Versions    []VersionAcks    `json:"versions"`
}

// Percentiles of a duration across streams, in seconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_seconds"`
	P99   float64 `json:"p99_seconds"`
	Max   float64 `json:"max_seconds"`
}

// Convergence of one change of one type: per stream, the time to ACK the first new
// version it received after the change, measured from the change (FromChange) and from
// the first receipt of a new version by any stream (FromFirstReceipt).
type Convergence struct {
	Type             string      `json:"type,omitempty"`
	Streams          int         `json:"streams"`
	Received         int         `json:"received"` // streams that received a new version
	Acked            int         `json:"acked"`    // streams that ACKed it
	Failed           int         `json:"failed,omitempty"`
	Missing          []string    `json:"missing,omitempty"`
	FirstReceipt     float64     `json:"first_receipt_seconds"` // from the change to the first receipt by any stream
	FromChange       Percentiles `json:"from_change"`
	FromFirstReceipt Percentiles `json:"from_first_receipt"`
	// Latency is FromFirstReceipt, under the name earlier versions of this tool used.
	Latency Percentiles `json:"latency"`
	Error   string      `json:"error,omitempty"`

	fromChange, fromFirst []time.Duration // the samples, for Pool
}

// Complete reports whether every stream ACKed the change.
func (c *Convergence) Complete() bool { return c != nil && c.Acked == c.Streams }

// Pool returns the percentiles over the samples of several changes together, from the
// change and from the first receipt: the p99 of all stream-changes, not a mean of p99s.
func Pool(cs ...*Convergence) (fromChange, fromFirstReceipt Percentiles) {
	var a, b []time.Duration
	for _, c := range cs {
		if c != nil {
			a, b = append(a, c.fromChange...), append(b, c.fromFirst...)
		}
	}
	return percentiles(a), percentiles(b)
}

// VersionAcks says how many streams ACKed one version of one type and when, relative to
// the start of the run.
type VersionAcks struct {
	Type          string  `json:"type"`
	Version       string  `json:"version"`
	Received      int     `json:"received"`
	Acked         int     `json:"acked"`
	FirstReceived float64 `json:"first_received_seconds"`
	LastAcked     float64 `json:"last_acked_seconds"`
}

// Result summarizes first-config times as they stand now, with the bytes received so
// far; Run adds the convergence and the versions seen.
func (s *Session) Result() *Result {
	res := &Result{Target: s.cfg.Target, Streams: s.cfg.Streams, Classes: s.cfg.Classes, Delta: s.cfg.Delta}
	var lat []time.Duration
	var last time.Time
	views := s.views()
	s.mu.Lock()
	if len(s.streams) == s.cfg.Streams {
		res.Ramp = s.lastOpened.Sub(s.start).Seconds()
	}
	s.mu.Unlock()
	for _, v := range views {
		if v.err != nil {
			res.Failed++
			if len(res.Errors) < maxListed {
				res.Errors = append(res.Errors, v.nodeID+": "+v.err.Error())
			}
		}
		if v.firstFull.IsZero() {
			res.NotUp = append(res.NotUp, v.nodeID)
			continue
		}
		lat = append(lat, v.firstFull.Sub(v.started))
		if v.firstFull.After(last) {
			last = v.firstFull
		}
	}
	// Streams the ramp never opened are not up either.
	for i := len(views); i < s.cfg.Streams; i++ {
		res.NotUp = append(res.NotUp, fmt.Sprintf("%s%d", s.cfg.IDPrefix, i))
	}
	res.Up = len(lat)
	res.FirstConfig = percentiles(lat)
	if res.Up == s.cfg.Streams {
		res.AllUp = last.Sub(s.start).Seconds()
	}
	res.NotUp = truncate(res.NotUp)
	res.BytesByType = s.counters.bytesByType()
	return res
}

func versionSummary(views []streamView, start time.Time) []VersionAcks {
	type key struct{ t, v string }
	acc := map[key]*VersionAcks{}
	var order []key
	for _, view := range views {
		for ti, es := range view.events {
			for _, e := range es {
				k := key{shortType(allTypes[ti]), e.version}
				a, ok := acc[k]
				if !ok {
					a = &VersionAcks{Type: k.t, Version: k.v, FirstReceived: e.received.Sub(start).Seconds()}
					acc[k], order = a, append(order, k)
				}
				a.Received++
				a.FirstReceived = min(a.FirstReceived, e.received.Sub(start).Seconds())
				if !e.acked.IsZero() {
					a.Acked++
					a.LastAcked = max(a.LastAcked, e.acked.Sub(start).Seconds())
				}
			}
		}
	}
	out := make([]VersionAcks, 0, len(order))
	for _, k := range order {
		out = append(out, *acc[k])
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].FirstReceived < out[j].FirstReceived
	})
	return out
}

// percentiles uses the nearest rank, so p99 of 50 samples is the 50th, never an
// interpolation that no stream experienced.
func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{Count: len(s), P50: rank(0.50).Seconds(), P99: rank(0.99).Seconds(), Max: s[len(s)-1].Seconds()}
}

func truncate(ids []string) []string {
	if len(ids) <= maxListed {
		return ids
	}
	return append(ids[:maxListed:maxListed], fmt.Sprintf("... and %d more", len(ids)-maxListed))
}

// WriteSummary prints the result for a person.
func (res *Result) WriteSummary(w io.Writer) {
	mode := "sotw"
	if res.Delta {
		mode = "delta"
	}
	fmt.Fprintf(w, "target %s, %d %s streams, %d classes\n", res.Target, res.Streams, mode, res.Classes)
	fmt.Fprintf(w, "first full config: %d/%d streams, p50 %s p99 %s max %s\n",
		res.Up, res.Streams, secs(res.FirstConfig.P50), secs(res.FirstConfig.P99), secs(res.FirstConfig.Max))
	if len(res.NotUp) > 0 {
		fmt.Fprintf(w, "  without full config: %s\n", strings.Join(res.NotUp, ", "))
	}
	if res.Failed > 0 {
		fmt.Fprintf(w, "  %d streams failed, e.g. %s\n", res.Failed, res.Errors[0])
	}
	if c := res.Convergence; c != nil {
		fmt.Fprintf(w, "%s change convergence: %d/%d streams acked (%d received), from first receipt p50 %s p99 %s max %s; from the change p50 %s p99 %s max %s\n",
			c.Type, c.Acked, c.Streams, c.Received, secs(c.FromFirstReceipt.P50), secs(c.FromFirstReceipt.P99), secs(c.FromFirstReceipt.Max),
			secs(c.FromChange.P50), secs(c.FromChange.P99), secs(c.FromChange.Max))
		if c.Error != "" {
			fmt.Fprintf(w, "  %s\n", c.Error)
		}
		if len(c.Missing) > 0 {
			fmt.Fprintf(w, "  not converged: %s\n", strings.Join(c.Missing, ", "))
		}
	}
	fmt.Fprintf(w, "bytes received: cds %s, eds %s, lds %s, rds %s\n",
		mib(res.BytesByType["cds"]), mib(res.BytesByType["eds"]), mib(res.BytesByType["lds"]), mib(res.BytesByType["rds"]))
	counts := map[string]int{}
	for _, v := range res.Versions {
		counts[v.Type]++
	}
	fmt.Fprintf(w, "distinct versions seen: cds %d, eds %d, lds %d, rds %d\n", counts["cds"], counts["eds"], counts["lds"], counts["rds"])
}

// WriteJSON writes the result to path.
func (res *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
