// Package proc runs the e2e tests' child processes (weir, Envoy, etcd, kube-apiserver,
// Prometheus) and hands out their ports: one place, so that two harnesses in one test
// binary never give the same port to two processes.
package proc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is the part of testing.TB the harnesses need. *testing.T satisfies it; so does the
// demo's stand-in, which is why they do not take testing.TB itself.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	Failed() bool
	Name() string
	TempDir() string
}

// Process is a child with its output appended to a log file. It dies with the test
// binary (Pdeathsig), so a panicking test leaves nothing behind.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // exit error, valid once done is closed
}

// Start runs bin with args; env nil means the test's own environment.
func Start(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "==== %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Err is the exit error once the process has exited (nil for a clean exit).
func (p *Process) Err() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// ExitedOn reports whether the process ended by sig (etcd, say, re-raises the SIGTERM it
// handled, which for it is a clean exit).
func (p *Process) ExitedOn(sig syscall.Signal) bool {
	if p.Running() {
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// Terminate sends SIGTERM and waits; after timeout it kills. Either way the process is
// reaped before it returns. It returns the exit error and whether it had to kill.
func (p *Process) Terminate(timeout time.Duration) (exitErr error, killed bool) {
	if !p.Running() {
		return p.err, false
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err, false
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die after SIGKILL", p.Name, p.cmd.Process.Pid), true
	}
	return p.err, true
}

// Kill sends SIGKILL (no shutdown at all) and waits until the process is reaped.
func (p *Process) Kill() error {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die after SIGKILL", p.Name, p.cmd.Process.Pid)
	}
}

// WaitFor calls ready every 100 ms until it returns nil, the process exits, or timeout
// passes. The error says which, with the last reason ready gave.
func (p *Process) WaitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited before it was ready (%v)", p.Name, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", p.Name, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreePort returns a TCP port that was free on ip a moment ago, chosen below the
// kernel's ephemeral range: the port is reserved before the process that binds it
// starts, and meanwhile an ephemeral port can become the source port of any outgoing
// connection on the machine. A port is handed out once per test binary.
func FreePort(ip string) (int, error) {
	low := ephemeralLow()
	givenMu.Lock()
	defer givenMu.Unlock()
	for range 100 {
		port := 10000 + rand.IntN(max(1, low-10000))
		if given[port] {
			continue // reserved for another process of this run, maybe not bound yet
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
			_ = ln.Close()
			given[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s after 100 tries", ip)
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// ephemeralLow is the first port the kernel hands out for outgoing connections.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 10000 {
		return 32768
	}
	return n
}

// TailFile returns the last lines of a file, or why it cannot.
func TailFile(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// RepoRoot is the directory holding weir's go.mod, found from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(data), "module github.com/weir-mesh/weir\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("weir's go.mod not found above the working directory")
		}
		dir = parent
	}
}
