//go:build !race

package tcp

const raceTrace = false
