package translator

import (
	"fmt"
	"testing"

	"github.com/weir-mesh/weir/e2e/scenario"
	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/watchers/file"
)

// BenchmarkTranslate measures one full translation for one sidecar class of a generated
// mesh (2 subsets, 3 endpoints per subset, a weighted VirtualService and a
// DestinationRule with policies per service). Run: go test ./translator -bench Translate -run '^$' -benchmem
func BenchmarkTranslate(b *testing.B) {
	for _, k := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", k), func(b *testing.B) {
			dir := b.TempDir()
			if _, err := scenario.Write(dir, scenario.Spec{Services: k, Subsets: 2, Endpoints: 3}); err != nil {
				b.Fatal(err)
			}
			snap, err := file.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			if model.HasErrors(snap.Diagnostics) {
				b.Fatalf("generated mesh has errors: %v", snap.Diagnostics[0])
			}
			class := model.ProxyClass{Role: model.RoleSidecar, Namespace: "default", OutboundAddress: "127.0.0.1", OutboundPort: 15001}
			out, diags := Translate(snap, class)
			if model.HasErrors(diags) || len(out.Clusters) != 3*k {
				b.Fatalf("translation: %d clusters (want %d), diagnostics %v", len(out.Clusters), 3*k, diags)
			}
			b.ResetTimer()
			for b.Loop() {
				Translate(snap, class)
			}
		})
	}
}
