package kubeapi

import (
	"fmt"
	"syscall"
	"time"

	"github.com/weir-mesh/weir/e2e/proc"
)

// process is etcd or kube-apiserver (see package proc).
type process struct{ *proc.Process }

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	p, err := proc.Start(name, logPath, nil, bin, args...)
	if err != nil {
		return nil, err
	}
	return &process{p}, nil
}

// stop sends SIGTERM and waits; after timeout it kills. Either way the process is reaped
// before stop returns. It reports an exit that was not clean; etcd finishes its graceful
// shutdown by raising the SIGTERM it received again, which counts as clean.
func (p *process) stop(timeout time.Duration) error {
	if !p.Running() {
		return nil // exited earlier; whoever waited for it reported why
	}
	err, killed := p.Terminate(timeout)
	switch {
	case p.Running():
		return err
	case killed:
		return fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.Name, timeout)
	case err != nil && !p.ExitedOn(syscall.SIGTERM):
		return fmt.Errorf("%s exited on SIGTERM: %w", p.Name, err)
	}
	return nil
}

func freePort() (int, error) { return proc.FreePort("127.0.0.1") }

func tailFile(path string, lines int) string { return proc.TailFile(path, lines) }

func repoRoot() (string, error) { return proc.RepoRoot() }
