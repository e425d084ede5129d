package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// serverCmd is how to run one server under test: a command line to which the driver
// appends --config-dir, --xds-address and --admin-address. Both weir and the reference
// server take these flags; nothing else about the server is assumed beyond /healthz on
// the admin address (and /readyz, when it has one).
type serverCmd struct {
	name string
	argv []string // binary, then fixed arguments
}

func (c serverCmd) command(dir, xdsAddr, adminAddr string) []string {
	return append(append([]string(nil), c.argv...),
		"--config-dir", dir, "--xds-address", xdsAddr, "--admin-address", adminAddr)
}

// server is one running server process.
type server struct {
	cmd     *exec.Cmd
	argv    []string
	xds     string
	admin   string
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// freePort returns a loopback port nothing listens on at the moment. Another process may
// take it before the server does; startServer retries when the server fails to listen.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServer starts the server on fresh loopback ports, its output appended to
// logPath, and waits until /healthz answers 200 (and /readyz, when the server has one).
// A server that exits while starting (say, a port taken meanwhile) is retried on other
// ports.
func startServer(ctx context.Context, c serverCmd, configDir, logPath string, timeout time.Duration) (*server, error) {
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		s, err := startOnce(c, configDir, logPath)
		if err != nil {
			return nil, err // the command cannot even be started: retrying will not help
		}
		if err := s.waitHealthy(ctx, timeout); err != nil {
			lastErr = err
			s.stop()
			select {
			case <-s.exited:
				continue // it died on its own: maybe the port; try others
			default:
			}
			return nil, err
		}
		return s, nil
	}
	return nil, lastErr
}

func startOnce(c serverCmd, configDir, logPath string) (*server, error) {
	xdsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	if len(c.argv) == 0 {
		return nil, fmt.Errorf("%s: no command", c.name)
	}
	argv := c.command(configDir, xdsAddr, adminAddr)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "### %s %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C to the driver does not reach the server before the
	// driver has stopped it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", c.name, err)
	}
	s := &server{cmd: cmd, argv: argv, xds: xdsAddr, admin: adminAddr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	return s, nil
}

// waitHealthy polls /healthz until 200, then /readyz until 200 unless the server has no
// /readyz (404).
func (s *server) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.admin+path, nil)
		if err != nil {
			return 0
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		for {
			code := get(path)
			if code == http.StatusOK || (path == "/readyz" && code == http.StatusNotFound) {
				break
			}
			select {
			case <-s.exited:
				return fmt.Errorf("server exited while starting (%v); see %s:\n%s", s.waitErr, s.logPath, tail(s.logPath, 20))
			case <-ctx.Done():
				return fmt.Errorf("server not healthy at %s%s after %s (last status %d); see %s", s.admin, path, timeout, code, s.logPath)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// stop sends SIGTERM and waits up to 10 s for the exit, then kills.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.exitError()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.exitError()
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return fmt.Errorf("server did not exit within 10s of SIGTERM; killed")
}

// exitError is nil for an exit caused by our SIGTERM or a clean exit.
func (s *server) exitError() error {
	var ee *exec.ExitError
	if errors.As(s.waitErr, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return s.waitErr
}

// tail returns the last n lines of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
