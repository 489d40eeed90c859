package tcp

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigLinuxValues(t *testing.T) {
	c := DefaultConfig()
	want := map[string]string{
		"net.ipv4.tcp_syn_retries":                    "6",
		"net.ipv4.tcp_synack_retries":                 "5",
		"net.ipv4.tcp_syn_linear_timeouts":            "0",
		"net.ipv4.tcp_retries1":                       "3",
		"net.ipv4.tcp_retries2":                       "15",
		"net.ipv4.tcp_orphan_retries":                 "0",
		"net.ipv4.tcp_keepalive_time":                 "7200",
		"net.ipv4.tcp_keepalive_intvl":                "75",
		"net.ipv4.tcp_keepalive_probes":               "9",
		"net.ipv4.tcp_fin_timeout":                    "60",
		"net.ipv4.tcp_rmem":                           "4096\t131072\t6291456",
		"net.ipv4.tcp_wmem":                           "4096\t16384\t4194304",
		"net.ipv4.tcp_window_scaling":                 "1",
		"net.ipv4.tcp_sack":                           "1",
		"net.ipv4.tcp_dsack":                          "1",
		"net.ipv4.tcp_timestamps":                     "1",
		"net.ipv4.tcp_ecn":                            "2",
		"net.ipv4.tcp_fastopen":                       "1",
		"net.ipv4.tcp_fastopen_blackhole_timeout_sec": "0",
		"net.ipv4.tcp_congestion_control":             "cubic",
		"net.ipv4.tcp_slow_start_after_idle":          "1",
		"net.ipv4.tcp_syncookies":                     "1",
		"net.ipv4.tcp_max_syn_backlog":                "4096",
		"net.core.somaxconn":                          "4096",
		"net.ipv4.tcp_rfc1337":                        "0",
		"net.ipv4.tcp_challenge_ack_limit":            "2147483647",
		"net.ipv4.tcp_invalid_ratelimit":              "500",
		"net.ipv4.tcp_rto_min_us":                     "200000",
		"net.ipv4.tcp_rto_max_ms":                     "120000",
		"net.ipv4.tcp_base_mss":                       "1024",
		"net.ipv4.tcp_min_snd_mss":                    "48",
		"net.ipv4.tcp_mtu_probing":                    "0",
		"net.ipv4.tcp_reordering":                     "3",
		"net.ipv4.tcp_recovery":                       "1",
		"net.ipv4.tcp_early_retrans":                  "3",
		"net.ipv4.tcp_thin_linear_timeouts":           "0",
		"net.ipv4.tcp_adv_win_scale":                  "1",
		"net.ipv4.tcp_moderate_rcvbuf":                "1",
		"net.ipv4.tcp_no_metrics_save":                "0",
		"net.ipv4.tcp_notsent_lowat":                  "4294967295",
		"net.ipv4.ip_local_port_range":                "32768\t60999",
		"net.ipv4.tcp_fastopen_key":                   "00000000-00000000-00000000-00000000",
	}
	for name, w := range want {
		got, err := c.Get(name)
		if err != nil {
			t.Errorf("Get(%s): %v", name, err)
			continue
		}
		if got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	if c.TimeWaitLen != 60*time.Second || c.RTOInitial != time.Second || c.RTOFallback != 3*time.Second ||
		c.DelAckMin != 40*time.Millisecond || c.DelAckMax != 200*time.Millisecond || c.NoDelay || c.UserTimeout != 0 {
		t.Errorf("non-sysctl defaults wrong: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("DefaultConfig does not validate: %v", err)
	}
	if c.IsZero() {
		t.Error("DefaultConfig IsZero")
	}
	var z Config
	if !z.IsZero() {
		t.Error("zero Config not IsZero")
	}
}

func TestConfigGetSetRoundTripAllNames(t *testing.T) {
	names := SysctlNames()
	if !slices.IsSorted(names) || len(names) < 40 {
		t.Fatalf("SysctlNames: %d names, sorted=%v", len(names), slices.IsSorted(names))
	}
	c := DefaultConfig()
	for _, n := range names {
		v, err := c.Get(n)
		if err != nil {
			t.Fatalf("Get(%s): %v", n, err)
		}
		if err := c.Set(n, v); err != nil {
			t.Errorf("Set(%s, %q) of its own Get value: %v", n, v, err)
		}
	}
	if c != DefaultConfig() {
		t.Error("Get/Set round trip changed the config")
	}
}

func TestConfigSet(t *testing.T) {
	c := DefaultConfig()
	steps := []struct{ name, value string }{
		{"net.ipv4.tcp_syn_retries", "3"},
		{"net/ipv4/tcp_synack_retries", "2"},
		{"/proc/sys/net/ipv4/tcp_retries2", " 8 "},
		{"net.ipv4.tcp_rmem", "1000\t2000   3000"},
		{"net.ipv4.tcp_keepalive_time", "60"},
		{"net.ipv4.tcp_invalid_ratelimit", "250"},
		{"net.ipv4.tcp_rto_min_us", "5000"},
		{"net.ipv4.tcp_window_scaling", "0"},
		{"net.core.somaxconn", "128"},
		{"net.ipv4.ip_local_port_range", "1024 65000"},
		{"net.ipv4.tcp_congestion_control", "reno"},
		{"net.ipv4.tcp_adv_win_scale", "-2"},
	}
	for _, s := range steps {
		if err := c.Set(s.name, s.value); err != nil {
			t.Fatalf("Set(%s, %q): %v", s.name, s.value, err)
		}
	}
	if c.SynRetries != 3 || c.SynackRetries != 2 || c.Retries2 != 8 || c.RMem != [3]int{1000, 2000, 3000} ||
		c.KeepaliveTime != time.Minute || c.InvalidRatelimit != 250*time.Millisecond || c.RTOMin != 5*time.Millisecond ||
		c.WindowScaling || c.Somaxconn != 128 || c.IPLocalPortRange != [2]int{1024, 65000} ||
		c.CongestionControl != "reno" || c.AdvWinScale != -2 {
		t.Fatalf("fields not set: %+v", c)
	}
}

func TestConfigSetRejects(t *testing.T) {
	cases := []struct {
		name, value string
		unknown     bool
		reason      string
	}{
		{"net.ipv4.tcp_no_such_thing", "1", true, "no such sysctl"},
		{"tcp_syn_retries", "3", true, "no such sysctl"},
		{"net.ipv4.tcp_syn_retries", "0", false, "0 out of range 1..127"},
		{"net.ipv4.tcp_syn_retries", "128", false, "out of range 1..127"},
		{"net.ipv4.tcp_syn_retries", "abc", false, "not an integer"},
		{"net.ipv4.tcp_syn_retries", "1 2", false, "want one integer"},
		{"net.ipv4.tcp_syn_retries", "", false, "want one integer"},
		{"net.ipv4.tcp_synack_retries", "256", false, "out of range"},
		{"net.ipv4.tcp_ecn", "3", false, "out of range 0..2"},
		{"net.ipv4.tcp_sack", "2", false, "out of range 0..1"},
		{"net.ipv4.tcp_rmem", "4096 131072", false, "want 3 integers"},
		{"net.ipv4.tcp_rmem", "0 131072 6291456", false, "field 1"},
		{"net.ipv4.tcp_wmem", "1 x 3", false, "field 2"},
		{"net.ipv4.tcp_min_snd_mss", "47", false, "out of range 48..65495"},
		{"net.ipv4.tcp_rto_max_ms", "999", false, "out of range 1000..120000"},
		{"net.ipv4.ip_local_port_range", "60999 32768", false, "above high port"},
		{"net.ipv4.ip_local_port_range", "0 100", false, "out of range 1..65535"},
		{"net.ipv4.ip_local_port_range", "100", false, "want 2 integers"},
		{"net.ipv4.tcp_congestion_control", "", false, "empty"},
		{"net.ipv4.tcp_congestion_control", "cu bic", false, "bad character"},
		{"net.ipv4.tcp_fastopen_key", "1-2-3", false, "want 4 hex words"},
		{"net.ipv4.tcp_fastopen_key", "1-2-3-g", false, "not hex"},
		{"net.ipv4.tcp_fastopen_key", "1-2-3-123456789", false, "1 to 8 hex digits"},
		{"net.ipv4.tcp_fastopen_key", "1-2-3-4,1-2-3-4,1-2-3-4", false, "at most 2 keys"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		err := c.Set(tc.name, tc.value)
		if err == nil {
			t.Errorf("Set(%s, %q) accepted", tc.name, tc.value)
			continue
		}
		if c != DefaultConfig() {
			t.Errorf("Set(%s, %q) failed but changed the config", tc.name, tc.value)
		}
		wantErr := ErrInvalidSysctlValue
		if tc.unknown {
			wantErr = ErrUnknownSysctl
		}
		if !errors.Is(err, wantErr) {
			t.Errorf("Set(%s, %q) = %v, not errors.Is %v", tc.name, tc.value, err, wantErr)
		}
		if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Set(%s, %q) error %q should name the sysctl and contain %q", tc.name, tc.value, err, tc.reason)
		}
	}
	if _, err := (&Config{}).Get("net.ipv4.nope"); !errors.Is(err, ErrUnknownSysctl) {
		t.Errorf("Get unknown: %v", err)
	}
}

func TestFastOpenKeyFormat(t *testing.T) {
	c := DefaultConfig()
	const v = "00112233-44556677-8899aabb-ccddeeff,01020304-05060708-090a0b0c-0d0e0f10"
	if err := c.Set("net.ipv4.tcp_fastopen_key", v); err != nil {
		t.Fatal(err)
	}
	k := c.FastOpenKey
	// Each word is stored little-endian, as Linux does.
	if k.Primary != [16]byte{0x33, 0x22, 0x11, 0x00, 0x77, 0x66, 0x55, 0x44, 0xbb, 0xaa, 0x99, 0x88, 0xff, 0xee, 0xdd, 0xcc} {
		t.Errorf("primary % x", k.Primary)
	}
	if !k.HasBackup || k.Backup[0] != 0x04 || k.Backup[15] != 0x0d {
		t.Errorf("backup % x has=%v", k.Backup, k.HasBackup)
	}
	if got, _ := c.Get("net.ipv4.tcp_fastopen_key"); got != v {
		t.Errorf("Get = %q want %q", got, v)
	}
	// Short words are zero-extended like sscanf %x.
	if err := c.Set("net.ipv4.tcp_fastopen_key", "1-2-3-4"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get("net.ipv4.tcp_fastopen_key"); got != "00000001-00000002-00000003-00000004" || c.FastOpenKey.HasBackup {
		t.Errorf("Get = %q backup=%v", got, c.FastOpenKey.HasBackup)
	}
	k2, err := ParseFastOpenKeys(v)
	if err != nil || k2 != k {
		t.Errorf("ParseFastOpenKeys: %v %v", k2, err)
	}
	if _, err := ParseFastOpenKeys("zz"); !errors.Is(err, ErrInvalidSysctlValue) {
		t.Errorf("ParseFastOpenKeys bad: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.SynRetries = 0
	c.RTOMin = 2 * time.Minute
	c.RTOMax = time.Minute
	c.DelAckMin = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config validated")
	}
	for _, s := range []string{"tcp_syn_retries", "RTOMin", "DelAckMin"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Validate error %q does not mention %s", err, s)
		}
	}
	if !errors.Is(err, ErrInvalidSysctlValue) {
		t.Error("Validate error not ErrInvalidSysctlValue")
	}
	c = DefaultConfig()
	c.KeepaliveTime = 1500 * time.Millisecond
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "whole number of s") {
		t.Errorf("fractional keepalive: %v", err)
	}
}

func TestEffectiveOrphanRetries(t *testing.T) {
	c := DefaultConfig()
	if c.EffectiveOrphanRetries(true) != 8 || c.EffectiveOrphanRetries(false) != 0 {
		t.Error("orphan retries 0 should mean 8 when alive")
	}
	c.OrphanRetries = 3
	if c.EffectiveOrphanRetries(true) != 3 {
		t.Error("explicit orphan retries ignored")
	}
}

// Linux's proc_dointvec parses with base 0: hex after 0x, octal after a
// leading 0 (sysctl -w net.ipv4.tcp_fastopen=0x70403 works there).
func TestConfigSetHexOctal(t *testing.T) {
	cases := []struct {
		name, value string
		want        string
	}{
		{"net.ipv4.tcp_fastopen", "0x70403", "459779"},
		{"net.ipv4.tcp_fastopen", "0X203", "515"},
		{"net.ipv4.tcp_fastopen", "01003", "515"},
		{"net.ipv4.tcp_fastopen", "0", "0"},
		{"net.ipv4.tcp_syn_retries", "010", "8"},
		{"net.ipv4.tcp_syn_retries", "+7", "7"},
		{"net.ipv4.tcp_rmem", "0x1000 0200000 6291456", "4096\t65536\t6291456"},
		{"net.ipv4.ip_local_port_range", "0x8000 0xEE47", "32768\t60999"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		if err := c.Set(tc.name, tc.value); err != nil {
			t.Errorf("Set(%s, %q): %v", tc.name, tc.value, err)
			continue
		}
		if got, _ := c.Get(tc.name); got != tc.want {
			t.Errorf("Set(%s, %q) then Get = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
	for _, bad := range []string{"0x", "08", "0xg", "1_000", "--1", "+-1", "0x-1"} {
		c := DefaultConfig()
		if err := c.Set("net.ipv4.tcp_syn_retries", bad); err == nil {
			t.Errorf("Set(tcp_syn_retries, %q) accepted", bad)
		}
	}
}
