package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/ustack/ustack"
	"github.com/ustack/ustack/link"
	"github.com/ustack/ustack/sim"
	"github.com/ustack/ustack/tcp"
)

// netFlags are the flags serve, dial and get share: where the stack's
// link comes from (a TUN device, or an in-memory pipe to a built-in peer).
type netFlags struct {
	tun     string
	addr    string
	gw      string
	mtu     int
	pipe    bool
	loss    float64
	delay   time.Duration
	sysctls sysctlFlag
}

func (n *netFlags) register(fs *flag.FlagSet, pipeHelp string) {
	fs.StringVar(&n.tun, "tun", "", "run on this Linux TUN device (created if missing; configure its host side yourself, e.g.\n\tip addr add 10.9.0.1/24 dev NAME && ip link set NAME up)")
	fs.StringVar(&n.addr, "addr", "", "the stack's address on the TUN device, CIDR (e.g. 10.9.0.2/24)")
	fs.StringVar(&n.gw, "gw", "", "default gateway on the TUN device (e.g. 10.9.0.1)")
	fs.IntVar(&n.mtu, "mtu", 1500, "link MTU")
	fs.BoolVar(&n.pipe, "pipe", false, pipeHelp)
	fs.BoolVar(&n.pipe, "sim", false, "same as --pipe")
	fs.Float64Var(&n.loss, "loss", 0, "with --pipe: packet loss probability each way")
	fs.DurationVar(&n.delay, "delay", 0, "with --pipe: one-way delay")
	fs.Var(&n.sysctls, "sysctl", "set a TCP sysctl, e.g. net.ipv4.tcp_congestion_control=reno (repeatable)")
}

func (n *netFlags) check() error {
	if n.pipe == (n.tun != "") {
		return errors.New("want exactly one of --tun NAME or --pipe")
	}
	if n.tun != "" && n.addr == "" {
		return errors.New("--tun needs --addr CIDR")
	}
	if n.pipe && (n.addr != "" || n.gw != "") {
		return errors.New("--addr and --gw apply to --tun (with --pipe the addresses are 10.0.0.1 and 10.0.0.2)")
	}
	if n.loss < 0 || n.loss > 1 || n.delay < 0 || n.mtu < 1280 || n.mtu > 65535 {
		return errors.New("--loss must be in [0,1], --delay not negative, --mtu in 1280..65535")
	}
	return nil
}

func (n *netFlags) config() (ustack.Config, error) {
	cfg := tcp.DefaultConfig()
	if err := sim.ApplySysctls(&cfg, n.sysctls); err != nil {
		return ustack.Config{}, err
	}
	return ustack.Config{TCP: cfg}, nil
}

// Addresses of the two ends of --pipe.
var (
	pipeNear = netip.MustParsePrefix("10.0.0.1/24")
	pipeFar  = netip.MustParsePrefix("10.0.0.2/24")
)

// afterTUNOpen, when set (tests), runs right after the TUN device is
// opened, before the stack uses it: tests move the device into a network
// namespace and configure its host side there.
var afterTUNOpen func(name string) error

// openTUN builds a stack on a TUN device.
func (n *netFlags) openTUN() (*ustack.Stack, netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(n.addr)
	if err != nil {
		return nil, pfx, fmt.Errorf("--addr: %w", err)
	}
	var gw netip.Addr
	if n.gw != "" {
		if gw, err = netip.ParseAddr(n.gw); err != nil {
			return nil, pfx, fmt.Errorf("--gw: %w", err)
		}
	}
	cfg, err := n.config()
	if err != nil {
		return nil, pfx, err
	}
	ep, err := link.OpenTUN(n.tun, n.mtu)
	if err != nil {
		return nil, pfx, err
	}
	if named, ok := ep.(interface{ Name() string }); ok {
		n.tun = named.Name() // a pattern such as "tun%d" becomes the kernel's pick
	}
	if afterTUNOpen != nil {
		if err := afterTUNOpen(n.tun); err != nil {
			ep.Close()
			return nil, pfx, err
		}
	}
	s, err := ustack.New(cfg)
	if err != nil {
		ep.Close()
		return nil, pfx, err
	}
	if err := s.AddInterface(n.tun, ep, pfx); err != nil {
		s.Close()
		ep.Close()
		return nil, pfx, err
	}
	if gw.IsValid() {
		dst := netip.MustParsePrefix("0.0.0.0/0")
		if gw.Is6() {
			dst = netip.MustParsePrefix("::/0")
		}
		if err := s.AddRoute(dst, gw, n.tun); err != nil {
			s.Close()
			return nil, pfx, err
		}
	}
	return s, pfx, nil
}

// openPipe builds two stacks joined by an (optionally impaired) in-memory
// link: near is 10.0.0.1, far is 10.0.0.2.
func (n *netFlags) openPipe() (near, far *ustack.Stack, err error) {
	cfg, err := n.config()
	if err != nil {
		return nil, nil, err
	}
	a, b := link.Pipe(n.mtu)
	var ea, eb link.Endpoint = a, b
	if n.loss > 0 || n.delay > 0 {
		im := link.Impairment{Loss: n.loss, Delay: n.delay, Seed: 1}
		ea = link.Impair(a, im)
		im.Seed = 2
		eb = link.Impair(b, im)
	}
	if near, err = ustack.New(cfg); err != nil {
		return nil, nil, err
	}
	if far, err = ustack.New(cfg); err != nil {
		near.Close()
		return nil, nil, err
	}
	if err = near.AddInterface("pipe0", ea, pipeNear); err == nil {
		err = far.AddInterface("pipe0", eb, pipeFar)
	}
	if err != nil {
		near.Close()
		far.Close()
		return nil, nil, err
	}
	return near, far, nil
}

// selfSigned makes a TLS certificate (ECDSA P-256, valid for a day) for
// the given IP addresses and localhost, and returns it with its PEM form.
func selfSigned(ips ...netip.Addr) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ustack serve", Organization: []string{"ustack"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
	}
	for _, ip := range ips {
		if ip.IsValid() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, certPEM, nil
}

func fingerprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return fmt.Sprintf("%X", sum[:8])
}
