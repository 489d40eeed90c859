//go:build race

package link

// Under the race detector the 100k-packet statistics tests run on fewer
// packets (their tolerances scale with the count); the full count runs
// without -race.
const raceEnabled = true
