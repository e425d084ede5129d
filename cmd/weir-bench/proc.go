package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; 100 on every
// Linux this runs on.
const clockTicks = 100

// rssSampleInterval is how often a window samples the server's resident set.
const rssSampleInterval = 500 * time.Millisecond

// cpuTicks returns utime+stime of a process (all its threads), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(b)
}

// parseStatTicks reads fields 14 and 15 of /proc/PID/stat. The command name, field 2,
// is in parentheses and may hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStatTicks(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", b)
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return utime + stime, nil
}

// statusBytes returns a "kB" field of /proc/PID/status (VmRSS, VmHWM) in bytes.
func statusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusField(b, field)
}

func parseStatusField(b []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", field, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s in status", field)
}

// resetPeakRSS makes VmHWM of the calling process start again from its current RSS, so
// that the driver's peak is per run.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// window is what one sampling window saw of the server and of the driver itself.
type window struct {
	Seconds        float64 `json:"seconds"`
	RSSMaxBytes    int64   `json:"rss_max_bytes"`    // server VmRSS, max over samples every 500 ms
	RSSEndBytes    int64   `json:"rss_end_bytes"`    // server VmRSS at the end of the window
	CPUSeconds     float64 `json:"cpu_seconds"`      // server utime+stime during the window
	CPUCores       float64 `json:"cpu_cores"`        // CPUSeconds / Seconds: 1.0 is one core busy
	ClientCPUCores float64 `json:"client_cpu_cores"` // the same for the load driver
	Samples        int     `json:"rss_samples"`      // RSS samples taken
	ServerExited   bool    `json:"server_exited,omitempty"`
}

// cpuMark is a reading of both processes' CPU, to diff later.
type cpuMark struct {
	at             time.Time
	server, client int64
}

func markCPU(pid int) cpuMark {
	m := cpuMark{at: time.Now()}
	m.server, _ = cpuTicks(pid)
	m.client, _ = cpuTicks(os.Getpid())
	return m
}

// since returns server and client CPU seconds from m to now, and the wall seconds.
func (m cpuMark) since(pid int) (server, client, wall float64) {
	now := markCPU(pid)
	return float64(now.server-m.server) / clockTicks, float64(now.client-m.client) / clockTicks, now.at.Sub(m.at).Seconds()
}

// sample watches the server for d: RSS every 500 ms, CPU at both ends. It stops early
// when stop is closed (the server exited).
func sample(pid int, d time.Duration, stop <-chan struct{}) window {
	var w window
	mark := markCPU(pid)
	take := func() {
		if rss, err := statusBytes(pid, "VmRSS"); err == nil {
			w.RSSMaxBytes = max(w.RSSMaxBytes, rss)
			w.RSSEndBytes = rss
			w.Samples++
		}
	}
	take()
	t := time.NewTicker(rssSampleInterval)
	defer t.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
loop:
	for {
		select {
		case <-stop:
			w.ServerExited = true
			break loop
		case <-end.C:
			break loop
		case <-t.C:
			take()
		}
	}
	take()
	server, client, wall := mark.since(pid)
	w.Seconds, w.CPUSeconds = wall, server
	if wall > 0 {
		w.CPUCores, w.ClientCPUCores = server/wall, client/wall
	}
	return w
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUModel      string `json:"cpu_model"`
	Cores         int    `json:"cores"`
	MemTotalBytes int64  `json:"mem_total_bytes"`
	Kernel        string `json:"kernel"`
	GoVersion     string `json:"go_version"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	NoFileLimit   uint64 `json:"nofile_limit"` // the driver's open-file limit; each stream is a socket
}

func machineInfo() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotalBytes, _ = parseStatusField(b, "MemTotal")
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		m.NoFileLimit = lim.Cur
	}
	return m
}
