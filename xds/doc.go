// Package xds serves translated Envoy resources over ADS (state-of-the-world and delta),
// one snapshot per proxy class, and knows which version every proxy has ACKed or NACKed.
// It knows Envoy and gRPC, not Istio or Kubernetes.
package xds
