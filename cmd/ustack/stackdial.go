package main

// The ustack stack as a replay path for "ustack copy --tun".
import _ "github.com/ustack/ustack/copy/stackdial"
