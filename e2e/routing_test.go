package e2e

import "testing"

// requestsPerCase is enough to catch a route that splits instead of matching: a 50/50
// mistake would pass 200 requests with probability 2^-200.
const requestsPerCase = 200

type headerCase struct {
	name    string
	headers []string // name/value pairs
	want    string   // the only version that may answer
}

func runHeaderCases(t *testing.T, envoy *Envoy, cases []headerCase) {
	t.Helper()
	for _, c := range cases {
		AssertAll(t, c.name, envoy.Traffic("reviews", c.headers...).Send(requestsPerCase), c.want)
	}
}

// TestHeaderRoutingExercise4: internal users and beta users get v2, everyone else v1.
func TestHeaderRoutingExercise4(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	// Named targetPort: resolved through the Pods' containerPort named http.
	env.WriteFile("services.yaml", ServicePods("reviews", "default", reviewsPort, true, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", SeedReviewsTesting)
	env.StartWeir()
	envoy := env.StartEnvoy(EnvoyOptions{})

	runHeaderCases(t, envoy, []headerCase{
		{"user-type: internal", []string{"user-type", "internal"}, "v2"},
		{"beta-user: true", []string{"beta-user", "true"}, "v2"},
		{"both headers", []string{"user-type", "internal", "beta-user", "true"}, "v2"},
		{"user-type: external", []string{"user-type", "external"}, "v1"},
		{"user-type: internal-ish (exact match only)", []string{"user-type", "internal-ish"}, "v1"},
		{"beta-user: false", []string{"beta-user", "false"}, "v1"},
		{"no headers", nil, "v1"},
	})
}

// TestABByUserIDExercise8: users whose id starts with 0-4 see v2. The endpoints here are
// WorkloadEntries selected by the Service, with the port mapped by name.
func TestABByUserIDExercise8(t *testing.T) {
	env := NewEnv(t)
	bs := env.StartBackends("v1", "v2")
	env.WriteFile("services.yaml", ServiceWorkloadEntries("reviews", "default", reviewsPort, bs))
	env.WriteFile("destinationrule.yaml", SeedReviewsDestinationRule)
	env.WriteFile("virtualservice.yaml", SeedProductABTest)
	env.StartWeir()
	envoy := env.StartEnvoy(EnvoyOptions{})

	var cases []headerCase
	for _, id := range []string{"0", "0123", "1abc", "2", "3999", "4123", "49"} {
		cases = append(cases, headerCase{"x-user-id: " + id, []string{"x-user-id", id}, "v2"})
	}
	// Istio's regex is a full RE2 match: "x0" does not match "[0-4].*".
	for _, id := range []string{"5123", "6", "7", "8", "9123", "a123", "x0"} {
		cases = append(cases, headerCase{"x-user-id: " + id, []string{"x-user-id", id}, "v1"})
	}
	cases = append(cases, headerCase{"no x-user-id", nil, "v1"})
	runHeaderCases(t, envoy, cases)
}
