//go:build race

package tcp

// raceTrace: under the race detector sync.Pool drops items at random and
// instrumentation allocates, so the allocation-count tests of the tracer
// skip.
const raceTrace = true
