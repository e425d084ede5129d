package kubeapi

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

// process is a child with its output appended to a log file. It dies with the test
// binary (Pdeathsig), so a panicking test leaves no etcd or API server behind.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // exit error, valid once done is closed
}

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "==== %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits; after timeout it kills. Either way the process is reaped
// before stop returns. It reports an exit that was not clean.
func (p *process) stop(timeout time.Duration) error {
	if !p.running() {
		return nil // exited earlier; whoever waited for it reported why
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil && !diedOf(p.cmd.ProcessState, syscall.SIGTERM) {
			return fmt.Errorf("%s exited on SIGTERM: %w", p.name, p.err)
		}
		return nil
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.name, timeout)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// diedOf reports whether the process ended by sig. etcd finishes its graceful shutdown
// by raising the SIGTERM it received again, so for it that is a clean exit.
func diedOf(st *os.ProcessState, sig syscall.Signal) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// waitFor calls ready every interval until it returns nil, the process exits, or timeout
// passes. The error says which, with the last reason ready gave.
func (p *process) waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("%s exited before it was ready (%v)", p.name, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago, chosen below the
// kernel's ephemeral range: the port is reserved before the process that binds it
// starts, and meanwhile an ephemeral port can become the source port of any outgoing
// connection on the machine.
func freePort() (int, error) {
	low := ephemeralLow()
	givenMu.Lock()
	defer givenMu.Unlock()
	for range 100 {
		port := 10000 + rand.IntN(max(1, low-10000))
		if given[port] {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			_ = ln.Close()
			given[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port on 127.0.0.1 after 100 tries")
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{} // ports handed out by this test binary
)

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	if n, err := strconv.Atoi(f[0]); err == nil && n > 10000 {
		return n
	}
	return 32768
}

func tailFile(path string, lines int) string {
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

// repoRoot is the directory holding weir's go.mod, found from the working directory up.
func repoRoot() (string, error) {
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
