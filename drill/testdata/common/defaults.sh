#!/bin/sh
# Settings the behaviour scripts start from, in the style of packetdrill's
# Linux defaults script; drill reads it line by line.
sysctl -q net.ipv4.tcp_timestamps=1
sysctl -q net.ipv4.tcp_sack=1
sysctl -q net.ipv4.tcp_window_scaling=1
sysctl -q net.ipv4.tcp_syn_retries=6
sysctl -q net.ipv4.tcp_congestion_control=cubic
set_sysctls.py /proc/sys/net/ipv4/tcp_fastopen=0x1 /proc/sys/net/ipv4/tcp_early_retrans=3
