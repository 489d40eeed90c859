package sim

import "testing"

// BenchmarkScenarios runs each built-in scenario (hours of virtual time for
// the keepalive one) per iteration.
func BenchmarkScenarios(b *testing.B) {
	for _, sc := range Scenarios() {
		b.Run(sc.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := sc.Run(Options{Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDemo runs the demo's 200 kB fetch over a 2% lossy link.
func BenchmarkDemo(b *testing.B) {
	for b.Loop() {
		if _, err := Demo(DefaultDemoOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
