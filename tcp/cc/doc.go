// Package cc implements TCP congestion control for the ustack engine:
// Reno (RFC 5681) and CUBIC (RFC 9438, the default). Windows are counted in
// packets like Linux. Controllers are plain values driven by the engine with
// per-ACK RateSamples and explicit times; they never read a clock.
//
// Work in progress: the CUBIC growth function and HyStart++ follow.
package cc
