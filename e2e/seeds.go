package e2e

// The YAML below is copied unchanged from the seed documents in shared/seeds/ (000: the
// traffic-management module, exercises 2-8; 002: the product-service canary). weir must
// accept it as users wrote it; do not "fix" it here.

// SeedReviewsDestinationRule is seed 000, exercise 2.
const SeedReviewsDestinationRule = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews-destination
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`

// SeedReviewsCanary is seed 000, exercise 2: 100% to v1, 0% to v2.
const SeedReviewsCanary = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-canary
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 100
    - destination: {host: reviews, subset: v2}
      weight: 0
`

// The seed's `kubectl patch virtualservice reviews-canary --type=merge -p=...` bodies
// (exercise 3 and the demo script's rollback), applied with MergePatch.
const (
	SeedPatch90to10 = `{"spec":{"http":[{"route":[{"destination":{"host":"reviews","subset":"v1"},"weight":90},{"destination":{"host":"reviews","subset":"v2"},"weight":10}]}]}}`
	SeedPatch50to50 = `{"spec":{"http":[{"route":[{"destination":{"host":"reviews","subset":"v1"},"weight":50},{"destination":{"host":"reviews","subset":"v2"},"weight":50}]}]}}`
	SeedPatchAllV2  = `{"spec":{"http":[{"route":[{"destination":{"host":"reviews","subset":"v2"},"weight":100}]}]}}`
	SeedPatchAllV1  = `{"spec":{"http":[{"route":[{"destination":{"host":"reviews","subset":"v1"},"weight":100}]}]}}`
)

// SeedReviewsTesting is seed 000, exercise 4: header-based routing.
const SeedReviewsTesting = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-testing
spec:
  hosts: [reviews]
  http:
  # Internal team gets new version
  - match:
    - headers:
        user-type: {exact: "internal"}
    route:
    - destination: {host: reviews, subset: v2}
  # Beta users get new version  
  - match:
    - headers:
        beta-user: {exact: "true"}
    route:
    - destination: {host: reviews, subset: v2}
  # Everyone else gets stable version
  - route:
    - destination: {host: reviews, subset: v1}
`

// SeedProductABTest is seed 000, exercise 8: A/B by user id.
const SeedProductABTest = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: product-ab-test
spec:
  hosts: [reviews]
  http:
  # 50% of users see new feature (v2)
  - match:
    - headers:
        x-user-id:
          regex: "[0-4].*"  # Users whose ID starts with 0-4
    route:
    - destination: {host: reviews, subset: v2}
  # 50% see current feature (v1)  
  - route:
    - destination: {host: reviews, subset: v1}
`

// SeedProductServiceVS is seed 002's canary VirtualService.
const SeedProductServiceVS = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: product-service
  namespace: production
spec:
  hosts:
  - product-service.production.svc.cluster.local
  http:
  - match:
    - headers:
        x-canary:
          exact: "true"
    route:
    - destination:
        host: product-service.production.svc.cluster.local
        subset: canary
      weight: 100
  - route:
    - destination:
        host: product-service.production.svc.cluster.local
        subset: stable
      weight: 90
    - destination:
        host: product-service.production.svc.cluster.local
        subset: canary
      weight: 10
    timeout: 5s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,refused-stream
`

// SeedProductServiceDR is seed 002's DestinationRule (circuit breaking, pools, outlier
// detection, a canary subset with its own pool).
const SeedProductServiceDR = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: product-service
  namespace: production
spec:
  host: product-service.production.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST  # or CONSISTENT_HASH for session affinity
    connectionPool:
      tcp:
        maxConnections: 1000
        connectTimeout: 3s
        tcpKeepalive:
          time: 7200s
          interval: 75s
      http:
        http1MaxPendingRequests: 1024
        http2MaxRequests: 1024
        maxRequestsPerConnection: 100
        maxRetries: 3
        idleTimeout: 3600s
        h2UpgradePolicy: UPGRADE  # Enable HTTP/2
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 30s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
      minHealthPercent: 50
  subsets:
  - name: stable
    labels:
      version: stable
  - name: canary
    labels:
      version: canary
    trafficPolicy:
      connectionPool:
        tcp:
          maxConnections: 500
        http:
          http1MaxPendingRequests: 512
`
