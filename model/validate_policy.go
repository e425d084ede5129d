package model

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"
)

// Limits Envoy enforces on consistent hashing (a cluster over them is NACKed).
const (
	maxRingSize       = 8 * 1024 * 1024 // ring_hash_lb_config.minimum_ring_size
	maxMaglevTable    = 5000011         // maglev_lb_config.table_size, exclusive
	maxLocalityWeight = 100
)

// Topology labels that cannot be combined with failover (Istio's rule: failover already
// orders by locality).
var topologyLabels = []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"}

// trafficPolicyBlocks checks the blocks a trafficPolicy and a port-level setting share.
func (v *validator) trafficPolicyBlocks(path string, lb *networking.LoadBalancerSettings, cp *networking.ConnectionPoolSettings,
	od *networking.OutlierDetection, tls *networking.ClientTLSSettings) {
	if cp != nil {
		v.tcpSettings(path+".connectionPool.tcp", cp.Tcp)
		v.httpSettings(path+".connectionPool.http", cp.Http)
		if ka := cp.GetHttp().GetHttp2KeepAlive(); ka != nil {
			v.duration(path+".connectionPool.http.http2KeepAlive.interval", ka.Interval, true)
			v.duration(path+".connectionPool.http.http2KeepAlive.timeout", ka.Timeout, true)
		}
	}
	v.outlierDetection(path+".outlierDetection", od)
	v.loadBalancer(path+".loadBalancer", lb)
	v.clientTLS(path+".tls", tls)
}

// trafficPolicyExtras checks what only a whole trafficPolicy has: its port-level settings
// and its retry budget.
func (v *validator) trafficPolicyExtras(path string, tp *networking.TrafficPolicy) {
	for i, pl := range tp.PortLevelSettings {
		p := fmt.Sprintf("%s.portLevelSettings[%d]", path, i)
		if n := pl.GetPort().GetNumber(); n < 1 || n > 65535 {
			v.errorf(p+".port.number", "a port-level setting needs the port it applies to (1-65535), not %d", n)
		}
		v.trafficPolicyBlocks(p, pl.LoadBalancer, pl.ConnectionPool, pl.OutlierDetection, pl.Tls)
	}
	if rb := tp.RetryBudget; rb != nil {
		if p := rb.Percent; p != nil && !(p.Value >= 0 && p.Value <= 100) {
			v.errorf(path+".retryBudget.percent", "must be between 0 and 100 (got %g)", p.Value)
		}
		v.duration(path+".retryBudget.budgetInterval", rb.BudgetInterval, false)
	}
}

func (v *validator) loadBalancer(path string, lb *networking.LoadBalancerSettings) {
	if lb == nil {
		return
	}
	if ch := lb.GetConsistentHash(); ch != nil {
		v.consistentHash(path+".consistentHash", ch)
	}
	if w := lb.Warmup; w != nil {
		if w.Duration == nil {
			v.errorf(path+".warmup.duration", "duration is required: how long a new endpoint takes to reach its full share")
		}
		v.duration(path+".warmup.duration", w.Duration, true)
		if p := w.MinimumPercent; p != nil && !(p.Value >= 0 && p.Value <= 100) {
			v.errorf(path+".warmup.minimumPercent", "must be between 0 and 100 (got %g)", p.Value)
		}
		if a := w.Aggression; a != nil && !(a.Value > 0) {
			v.errorf(path+".warmup.aggression", "must be greater than 0 (1 ramps up linearly; got %g)", a.Value)
		}
	}
	v.duration(path+".warmupDurationSecs", lb.WarmupDurationSecs, true)
	v.localityLbSetting(path+".localityLbSetting", lb.LocalityLbSetting)
}

func (v *validator) consistentHash(path string, ch *networking.LoadBalancerSettings_ConsistentHashLB) {
	switch k := ch.HashKey.(type) {
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		if !ValidHeaderName(k.HttpHeaderName) {
			v.errorf(path+".httpHeaderName", "%q is not a valid header name", k.HttpHeaderName)
		}
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		if k.HttpQueryParameterName == "" {
			v.errorf(path+".httpQueryParameterName", "must not be empty")
		}
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		v.hashCookie(path+".httpCookie", k.HttpCookie)
	}
	if ch.MinimumRingSize != 0 && ch.HashAlgorithm != nil {
		v.errorf(path+".minimumRingSize", "set either minimumRingSize (deprecated) or ringHash/maglev, not both")
	}
	v.ringSize(path+".minimumRingSize", ch.MinimumRingSize)
	switch a := ch.HashAlgorithm.(type) {
	case *networking.LoadBalancerSettings_ConsistentHashLB_RingHash_:
		v.ringSize(path+".ringHash.minimumRingSize", a.RingHash.GetMinimumRingSize())
	case *networking.LoadBalancerSettings_ConsistentHashLB_Maglev:
		switch n := a.Maglev.GetTableSize(); {
		case n == 0:
			v.errorf(path+".maglev.tableSize", "tableSize is required for maglev (a prime number, e.g. 65537)")
		case n >= maxMaglevTable || !isPrime(n):
			v.errorf(path+".maglev.tableSize", "must be a prime number below %d (Envoy's rule), not %d", maxMaglevTable, n)
		}
	}
}

func (v *validator) hashCookie(path string, c *networking.LoadBalancerSettings_ConsistentHashLB_HTTPCookie) {
	if c == nil {
		v.errorf(path, "httpCookie needs a name and a ttl")
		return
	}
	if c.Name == "" || strings.ContainsAny(c.Name, "=; \t") {
		v.errorf(path+".name", "%q is not a valid cookie name", c.Name)
	}
	if c.Ttl == nil {
		v.errorf(path+".ttl", "ttl is required (Istio's rule): Envoy sets the cookie with this lifetime on a client that has none; 0s makes it a session cookie")
	}
	v.duration(path+".ttl", c.Ttl, false)
	for i, a := range c.Attributes {
		if a.GetName() == "" {
			v.errorf(fmt.Sprintf("%s.attributes[%d].name", path, i), "must not be empty")
		}
	}
}

func (v *validator) ringSize(path string, n uint64) {
	if n > maxRingSize {
		v.errorf(path, "must be at most %d (Envoy's largest ring), not %d", maxRingSize, n)
	}
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// localityLbSetting applies Istio's validation: distribute and failover exclude each
// other, weights are 1-100 and add up to 100, patterns have at most one trailing "*",
// failover names whole regions.
func (v *validator) localityLbSetting(path string, ls *networking.LocalityLoadBalancerSetting) {
	if ls == nil {
		return
	}
	if len(ls.Distribute) > 0 && len(ls.Failover) > 0 {
		v.errorf(path, "distribute and failover cannot both be set: distribute weighs localities, failover orders them")
	}
	if len(ls.Failover) > 0 {
		for i, p := range ls.FailoverPriority {
			if key, _, _ := strings.Cut(p, "="); slices.Contains(topologyLabels, key) {
				v.errorf(fmt.Sprintf("%s.failoverPriority[%d]", path, i),
					"%s cannot be combined with failover, which already orders endpoints by locality", key)
			}
		}
	}
	for i, p := range ls.FailoverPriority {
		if key, _, _ := strings.Cut(p, "="); key == "" {
			v.errorf(fmt.Sprintf("%s.failoverPriority[%d]", path, i), "a label name is required, not %q", p)
		}
	}
	froms := map[string]int{}
	for i, d := range ls.Distribute {
		p := fmt.Sprintf("%s.distribute[%d]", path, i)
		v.localityPattern(p+".from", d.From)
		if first, dup := froms[d.From]; dup {
			v.errorf(p+".from", "%q is already the from of distribute[%d]", d.From, first)
		}
		froms[d.From] = i
		v.distributeTo(p+".to", d.To)
	}
	for i, f := range ls.Failover {
		p := fmt.Sprintf("%s.failover[%d]", path, i)
		v.failoverRegion(p+".from", f.From)
		v.failoverRegion(p+".to", f.To)
		if f.From == f.To && f.From != "" {
			v.errorf(p+".to", "failover must go to another region than %q", f.From)
		}
	}
}

func (v *validator) distributeTo(path string, to map[string]uint32) {
	if len(to) == 0 {
		v.errorf(path, "at least one locality and its weight is required")
		return
	}
	var sum uint32
	for _, loc := range slices.Sorted(maps.Keys(to)) {
		v.localityPattern(fmt.Sprintf("%s[%s]", path, loc), loc)
		w := to[loc]
		if w < 1 || w > maxLocalityWeight {
			v.errorf(fmt.Sprintf("%s[%s]", path, loc), "weight must be between 1 and 100, not %d", w)
		}
		sum += min(w, maxLocalityWeight+1)
	}
	if sum != 100 {
		v.errorf(path, "weights must add up to 100, not %d", sum)
	}
}

// localityPattern accepts region[/zone[/subzone]] with at most one "*", as the last
// character.
func (v *validator) localityPattern(path, loc string) {
	switch n := strings.Count(loc, "*"); {
	case strings.TrimSpace(loc) == "":
		v.errorf(path, "a locality (region/zone/subzone, \"*\" as a wildcard) is required")
	case n > 1 || n == 1 && !strings.HasSuffix(loc, "*"):
		v.errorf(path, "%q: a wildcard \"*\" may appear once, at the end", loc)
	case strings.Count(loc, "/") > 2:
		v.errorf(path, "%q: a locality is region/zone/subzone at most", loc)
	}
}

func (v *validator) failoverRegion(path, region string) {
	switch {
	case region == "":
		v.errorf(path, "a region is required")
	case strings.ContainsAny(region, "/*"):
		v.errorf(path, "%q: failover names whole regions, without \"/\" or \"*\"", region)
	}
}

// clientTLS checks that each mode has what Envoy needs. Files are read by Envoy, so they
// must be absolute (Envoy would resolve a relative name against its own working
// directory); the file source checks that they hold certificates.
func (v *validator) clientTLS(path string, t *networking.ClientTLSSettings) {
	if t == nil {
		return
	}
	if t.CredentialName != "" {
		v.errorf(path+".credentialName",
			"credentialName is not supported yet: weir reads no Secrets for DestinationRules; give the files in clientCertificate, privateKey and caCertificates instead")
	}
	files := map[string]string{"clientCertificate": t.ClientCertificate, "privateKey": t.PrivateKey,
		"caCertificates": t.CaCertificates, "caCrl": t.CaCrl}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if f := files[name]; f != "" && !filepath.IsAbs(f) {
			v.errorf(path+"."+name, "%q: give an absolute file name (Envoy reads the file itself)", f)
		}
	}
	switch t.Mode {
	case networking.ClientTLSSettings_MUTUAL:
		if t.ClientCertificate == "" && t.CredentialName == "" {
			v.errorf(path+".clientCertificate", "mode MUTUAL needs clientCertificate, the certificate chain presented to the server")
		}
		if t.PrivateKey == "" && t.CredentialName == "" {
			v.errorf(path+".privateKey", "mode MUTUAL needs privateKey, the key of clientCertificate")
		}
		fallthrough
	case networking.ClientTLSSettings_SIMPLE:
		if t.CaCertificates == "" && t.CredentialName == "" && !t.InsecureSkipVerify.GetValue() {
			v.errorf(path+".caCertificates",
				"mode %s needs caCertificates to verify the server (weir does not guess where this system keeps its CA bundle); or set insecureSkipVerify: true to encrypt without verifying", t.Mode)
		}
	}
	if len(t.Sni) > 255 {
		v.errorf(path+".sni", "must be at most 255 bytes")
	}
	for i, san := range t.SubjectAltNames {
		if strings.TrimSpace(san) == "" {
			v.errorf(fmt.Sprintf("%s.subjectAltNames[%d]", path, i), "must not be empty")
		}
	}
}
