package kubeapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Where the binaries are looked for when their variable is unset.
const (
	defaultEtcd  = "/usr/bin/etcd"               // Debian's etcd-server package
	apiServerMod = "tools/kube-apiserver/go.mod" // names the k8s.io/kubernetes version
)

// ErrNoBinary means a program the cluster runs is not installed.
var ErrNoBinary = errors.New("binary not found")

// findAPIServer returns $WEIR_KUBE_APISERVER, else the binary `make kube-apiserver`
// caches in the repository's .cache/kube/ for the version tools/kube-apiserver requires.
func findAPIServer() (string, error) {
	const hint = "run `make kube-apiserver` (or set WEIR_KUBE_APISERVER)"
	if p := os.Getenv("WEIR_KUBE_APISERVER"); p != "" {
		return checkExecutable("kube-apiserver", "WEIR_KUBE_APISERVER="+p, p, hint)
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("kube-apiserver: %w; %s", err, hint)
	}
	version, err := kubernetesVersion(filepath.Join(root, apiServerMod))
	if err != nil {
		return "", fmt.Errorf("kube-apiserver: %w; %s", err, hint)
	}
	p := filepath.Join(root, ".cache", "kube", "kube-apiserver-"+version)
	return checkExecutable("kube-apiserver", p, p, hint)
}

// findEtcd returns $WEIR_ETCD, else the etcd of Debian's etcd-server package.
func findEtcd() (string, error) {
	const hint = "run `make etcd` (or set WEIR_ETCD)"
	if p := os.Getenv("WEIR_ETCD"); p != "" {
		return checkExecutable("etcd", "WEIR_ETCD="+p, p, hint)
	}
	return checkExecutable("etcd", defaultEtcd, defaultEtcd, hint)
}

func checkExecutable(name, what, path, hint string) (string, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w: %s: %v; %s", name, ErrNoBinary, what, err, hint)
	case st.IsDir() || st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s: %w: %s is not an executable file; %s", name, ErrNoBinary, what, hint)
	}
	return path, nil
}

// kubernetesVersion reads the k8s.io/kubernetes version a go.mod requires.
func kubernetesVersion(goMod string) (string, error) {
	data, err := os.ReadFile(goMod)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s requires no k8s.io/kubernetes", goMod)
}
