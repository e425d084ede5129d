// Package deploy holds what runs weir in a Kubernetes cluster: the CRDs (crds/), weir's
// namespace, RBAC, Deployment and Service (weir/), and the seed's demo (demo/). Its tests
// decode every manifest strictly and hold the manifests to the code they describe.
package deploy
