//go:build !race

package ustack

const raceEnabled = false
