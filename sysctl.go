package ustack

import (
	"io"

	"github.com/ustack/ustack/tcp"
)

// ParseSysctl reads sysctl.conf-format lines ("net.ipv4.tcp_syn_retries =
// 3", comments with # or ;) and returns a Config starting from the Linux
// defaults with those values applied. Errors name the offending line.
func ParseSysctl(r io.Reader) (Config, error) {
	cfg := Config{TCP: tcp.DefaultConfig(), TTL: 64}
	if err := tcp.ParseSysctl(r, &cfg.TCP); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
