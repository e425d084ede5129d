package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-mesh/weir/load"
)

// schema names the layout of the output file; bump it when a field changes meaning.
const schema = "weir-bench/v1"

// Output is the file -out receives: where and how the benchmark ran, and one record per
// (server, N) run.
type Output struct {
	Schema   string    `json:"schema"`
	Started  time.Time `json:"started"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Runs     []*Run    `json:"runs"`
}

// Settings are the flags the runs shared.
type Settings struct {
	Label          string   `json:"label,omitempty"`
	Servers        []string `json:"servers"`
	Streams        []int    `json:"n"`
	Services       int      `json:"services"`
	Subsets        int      `json:"subsets"`
	Endpoints      int      `json:"endpoints"`
	PerFile        int      `json:"services_per_file"`
	Classes        int      `json:"classes"`
	StreamsPerConn int      `json:"streams_per_conn"`
	Ramp           float64  `json:"ramp_streams_per_second"`
	Settle         float64  `json:"settle_seconds"`
	Steady         float64  `json:"steady_seconds"`
	Changes        int      `json:"changes"`
	ChangePause    float64  `json:"change_pause_seconds"`
	ChangeTimeout  float64  `json:"change_timeout_seconds"`
	Churn          float64  `json:"churn_seconds"`
	ChurnRate      float64  `json:"churn_rate_per_second"`
	ChurnDrain     float64  `json:"churn_drain_seconds"`
	Timeout        float64  `json:"timeout_seconds"`
}

// Run is one server at one stream count.
type Run struct {
	Label          string    `json:"label,omitempty"`
	Server         string    `json:"server"`
	Command        []string  `json:"command"`
	N              int       `json:"n"`
	Services       int       `json:"services"`
	Subsets        int       `json:"subsets"`
	Endpoints      int       `json:"endpoints"`
	PerFile        int       `json:"services_per_file"`
	Classes        int       `json:"classes"`
	StreamsPerConn int       `json:"streams_per_conn"`
	Started        time.Time `json:"started"`
	Seconds        float64   `json:"seconds"` // the whole run, server start to stop
	Error          string    `json:"error,omitempty"`
	Dir            string    `json:"dir,omitempty"` // kept temp dir (config and server log) of a failed run, or with -keep

	ServerStartSeconds float64 `json:"server_start_seconds"` // process start to /healthz (and /readyz) 200

	// First config: all N streams opened at the ramp rate.
	Up          int              `json:"up"`
	Ramp        float64          `json:"ramp_seconds"`   // first stream opened to last stream opened (N / -ramp unless the client lagged)
	AllUp       float64          `json:"all_up_seconds"` // first stream opened to last stream's first full config
	FirstConfig load.Percentiles `json:"first_config"`

	Steady          *window                  `json:"steady,omitempty"`
	SteadyResponses map[string]load.Counters `json:"steady_responses,omitempty"` // what the streams received during the steady window: nothing, ideally

	Changes []*Change      `json:"changes,omitempty"`
	Change  *ChangeSummary `json:"change,omitempty"` // pooled over Changes

	Churn *Churn `json:"churn,omitempty"`

	// The whole run.
	PeakRSSBytes     int64                    `json:"peak_rss_bytes"` // server VmHWM just before SIGTERM
	CPUSeconds       float64                  `json:"cpu_seconds"`    // server utime+stime just before SIGTERM
	ClientCPUSeconds float64                  `json:"client_cpu_seconds"`
	ClientPeakRSS    int64                    `json:"client_peak_rss_bytes"`
	FailedStreams    int                      `json:"failed_streams"`
	StreamErrors     []string                 `json:"stream_errors,omitempty"`
	Received         map[string]load.Counters `json:"received"` // everything the streams received, per type
	ServerExit       string                   `json:"server_exit,omitempty"`
}

// Change is one weight change and its RDS convergence.
type Change struct {
	Service     int                      `json:"service"`
	Weights     []int                    `json:"weights"`
	Convergence *load.Convergence        `json:"convergence"`
	Responses   map[string]load.Counters `json:"responses"` // received from the write until convergence
}

// ChangeSummary pools the per-stream samples of every change: p99 is over all
// stream-changes.
type ChangeSummary struct {
	Changes          int              `json:"changes"`
	Complete         int              `json:"complete"`
	FromChange       load.Percentiles `json:"from_change"`
	FromFirstReceipt load.Percentiles `json:"from_first_receipt"`
}

// Churn is the endpoint churn phase: what the streams received while endpoints moved
// at a steady rate, and what it cost the server.
type Churn struct {
	Seconds      float64                  `json:"seconds"` // writing, plus the drain
	Rate         float64                  `json:"rate_per_second"`
	Writes       int                      `json:"writes"`        // ShiftEndpoint calls
	DrainSeconds float64                  `json:"drain_seconds"` // wait after the last write
	Responses    map[string]load.Counters `json:"responses"`
	Window       window                   `json:"window"` // server CPU and RSS over the phase
}

func (o *Output) write(path string) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Chmod(0o644) // results are for reading and committing, like any file
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// writeSummary prints one line per run.
func writeSummary(w io.Writer, o *Output) {
	m := o.Machine
	fmt.Fprintf(w, "%s, %d cores, %s, kernel %s, %s\n", m.CPUModel, m.Cores, mibs(m.MemTotalBytes)+" RAM", m.Kernel, m.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tN\tsvcs\tup\tall up\tfirst p50\tfirst p99\tRSS\tCPU\tchg p50\tchg p99\tchg max\tpeak RSS\tCPU s\tchurn resp c/e/l/s/r\tchurn MiB\t")
	for _, r := range o.Runs {
		row := []string{r.Server, fmt.Sprint(r.N), fmt.Sprint(r.Services), fmt.Sprintf("%d/%d", r.Up, r.N),
			sec(r.AllUp), sec(r.FirstConfig.P50), sec(r.FirstConfig.P99)}
		if r.Steady != nil {
			row = append(row, mibs(r.Steady.RSSMaxBytes), fmt.Sprintf("%.1f%%", 100*r.Steady.CPUCores))
		} else {
			row = append(row, "-", "-")
		}
		if c := r.Change; c != nil && c.FromChange.Count > 0 {
			row = append(row, sec(c.FromChange.P50), sec(c.FromChange.P99), sec(c.FromChange.Max))
		} else {
			row = append(row, "-", "-", "-")
		}
		row = append(row, mibs(r.PeakRSSBytes), fmt.Sprintf("%.1f", r.CPUSeconds))
		if ch := r.Churn; ch != nil {
			row = append(row, fmt.Sprintf("%d/%d/%d/%d/%d", ch.Responses["cds"].Responses, ch.Responses["eds"].Responses,
				ch.Responses["lds"].Responses, ch.Responses["srds"].Responses, ch.Responses["rds"].Responses), mibs(totalBytes(ch.Responses)))
		} else {
			row = append(row, "-", "-")
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for _, r := range o.Runs {
		if r.Error != "" {
			fmt.Fprintf(w, "FAILED %s N=%d: %s\n", r.Server, r.N, r.Error)
			if r.Dir != "" {
				fmt.Fprintf(w, "  kept %s\n", r.Dir)
			}
		}
	}
}

func totalBytes(cs map[string]load.Counters) int64 {
	var n int64
	for _, c := range cs {
		n += c.Bytes
	}
	return n
}

func sec(s float64) string {
	switch {
	case s == 0:
		return "-"
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	default:
		return fmt.Sprintf("%.2fs", s)
	}
}

func mibs(n int64) string { return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20)) }
