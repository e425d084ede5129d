// Package model is weir's source-independent picture of the world: services, endpoints,
// the Istio-style traffic objects and the proxies asking for config.
// Watchers produce it; the translator consumes it. It knows nothing of Envoy or gRPC.
package model
