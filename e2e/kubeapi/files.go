package kubeapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The identity every Cluster gives its static admin token.
const (
	AdminUser  = "weir-admin"
	AdminGroup = "system:masters" // bypasses RBAC, like a cluster's break-glass admin
)

// writeServiceAccountKey writes the private key kube-apiserver signs service-account
// tokens with; the same file verifies them (a private key file holds the public key).
func writeServiceAccountKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// writeTokenFile writes a --token-auth-file holding one fresh admin token, and returns it.
func writeTokenFile(path string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	line := fmt.Sprintf("%s,%s,%s,%q\n", token, AdminUser, AdminUser, AdminGroup)
	return token, os.WriteFile(path, []byte(line), 0o600)
}

// writeKubeconfig writes a kubeconfig for cfg, for tools and processes that take one
// (weir itself, later) rather than a *rest.Config.
func writeKubeconfig(path string, cfg *rest.Config) error {
	const name = "weir-test"
	kc := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{name: {
			Server:                   cfg.Host,
			CertificateAuthorityData: cfg.CAData,
		}},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{name: {
			Token:             cfg.BearerToken,
			Impersonate:       cfg.Impersonate.UserName,
			ImpersonateGroups: cfg.Impersonate.Groups,
		}},
		Contexts: map[string]*clientcmdapi.Context{name: {
			Cluster:   name,
			AuthInfo:  name,
			Namespace: "default",
		}},
		CurrentContext: name,
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(kc, path)
}
