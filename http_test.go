package ustack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHTTPSBetweenStacks serves net/http over crypto/tls on one stack and
// fetches from the other with http.Client, whose dialer is the stack's.
func TestHTTPSBetweenStacks(t *testing.T) {
	p := newPair(t, 1500)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("10.0.0.2"), net.ParseIP("fd00::2")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	ln, err := p.B.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	const size = 4 << 20
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.CopyN(w, mrand.NewChaCha8([32]byte{9}), size)
	})}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}))
	defer srv.Close()

	want := sha256.New()
	io.CopyN(want, mrand.NewChaCha8([32]byte{9}), size)
	client := &http.Client{
		Transport: &http.Transport{DialContext: p.A.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   60 * time.Second,
	}
	defer client.CloseIdleConnections()
	for _, host := range []string{"10.0.0.2", "[fd00::2]"} {
		for i := 0; i < 2; i++ { // the second request reuses the connection
			resp, err := client.Get("https://" + host + "/")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || string(h.Sum(nil)) != string(want.Sum(nil)) {
				t.Fatalf("%s: %d bytes, %v, hash match %v", host, n, err, string(h.Sum(nil)) == string(want.Sum(nil)))
			}
		}
	}
	if n := p.A.Stats().TCP.ActiveOpens; n != 2 {
		t.Errorf("ActiveOpens %d, want 2 (keep-alive reuse)", n)
	}
}
