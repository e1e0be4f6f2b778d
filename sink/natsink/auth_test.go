package natsink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/osprey-vision/osprey/event"
)

// connectErr builds a sink for cfg and returns Connect's error and how long
// Connect took.
func connectErr(t *testing.T, cfg Config) (error, time.Duration) {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	defer s.Close(context.Background())
	start := time.Now()
	err = s.Connect(context.Background())
	return err, time.Since(start)
}

// deliverOne writes one event through a connected sink and waits for the ack.
func deliverOne(t *testing.T, cfg Config) {
	t.Helper()
	s := newSink(t, cfg)
	if err := s.Write(context.Background(), frameWith("cam", sampleEvent(event.SourceUp, cfg.Pipeline, "cam", 0))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "event acknowledged", func() bool { return s.Stats().Published == 1 })
}

func TestUserPassword(t *testing.T) {
	srv := runServer(t, &server.Options{Username: "osprey", Password: "s3cret"})
	port := serverPort(srv)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	js := &JetStreamConfig{Stream: "AUTH", Create: true}

	deliverOne(t, Config{URL: url, Pipeline: "p", User: "osprey", Password: "s3cret", JetStream: js})

	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"wrong password", Config{URL: url, Pipeline: "p", User: "osprey", Password: "wrong"},
			"natsink: connect to " + url + ": nats: Authorization Violation: check the sink's credentials and tls settings"},
		{"no credentials", Config{URL: url, Pipeline: "p"},
			"natsink: connect to " + url + ": nats: Authorization Violation: check the sink's credentials and tls settings"},
		{"password in the url is redacted", Config{URL: fmt.Sprintf("nats://osprey:wrong@127.0.0.1:%d", port), Pipeline: "p"},
			fmt.Sprintf("natsink: connect to nats://***@127.0.0.1:%d: nats: Authorization Violation: check the sink's credentials and tls settings", port)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, took := connectErr(t, tt.cfg)
			if err == nil || !strings.EqualFold(err.Error(), tt.err) {
				t.Fatalf("connect error\n got %v\nwant %s", err, tt.err)
			}
			if strings.Contains(err.Error(), "wrong") || took > 5*time.Second {
				t.Fatalf("error leaks the password or took %v (a retry loop?)", took)
			}
		})
	}
}

func TestToken(t *testing.T) {
	srv := runServer(t, &server.Options{Authorization: "tok3n"})
	deliverOne(t, Config{URL: srv.ClientURL(), Pipeline: "p", Token: "tok3n"})
	if err, _ := connectErr(t, Config{URL: srv.ClientURL(), Pipeline: "p", Token: "bad"}); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("bad token: %v", err)
	}
}

// pki is a throwaway CA with a server and a client certificate, as PEM files.
type pki struct {
	dir                          string
	caFile, srvCert, srvKey      string
	cliCert, cliKey, otherCAFile string
	caPool                       *x509.CertPool
}

func newPKI(t *testing.T) pki {
	dir := t.TempDir()
	p := pki{dir: dir}
	ca, caKey := makeCert(t, nil, nil, "osprey test ca", true)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(ca)
	sc, sk := makeCert(t, ca, caKey, "127.0.0.1", false)
	p.srvCert = writePEM(t, dir, "server.pem", "CERTIFICATE", sc.Raw)
	p.srvKey = writeKey(t, dir, "server-key.pem", sk)
	cc, ck := makeCert(t, ca, caKey, "osprey-device", false)
	p.cliCert = writePEM(t, dir, "client.pem", "CERTIFICATE", cc.Raw)
	p.cliKey = writeKey(t, dir, "client-key.pem", ck)
	other, _ := makeCert(t, nil, nil, "some other ca", true)
	p.otherCAFile = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	return p
}

func makeCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	} else if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeKey(t *testing.T, dir, name string, k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "EC PRIVATE KEY", der)
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	cert, err := tls.LoadX509KeyPair(p.srvCert, p.srvKey)
	if err != nil {
		t.Fatal(err)
	}
	// The server demands a client certificate signed by the CA (mutual TLS).
	srv := runServer(t, &server.Options{TLS: true, TLSVerify: true, TLSTimeout: 2,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: p.caPool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	url := fmt.Sprintf("tls://127.0.0.1:%d", serverPort(srv))

	deliverOne(t, Config{URL: url, Pipeline: "p", TLS: TLSConfig{CA: p.caFile, Cert: p.cliCert, Key: p.cliKey},
		JetStream: &JetStreamConfig{Stream: "TLS", Create: true}})

	tests := []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"server cert from an unknown ca", TLSConfig{CA: p.otherCAFile, Cert: p.cliCert, Key: p.cliKey}, "certificate signed by unknown authority"},
		{"no client certificate", TLSConfig{CA: p.caFile}, "tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, took := connectErr(t, Config{URL: url, Pipeline: "p", TLS: tt.tls})
			if err == nil || !strings.HasPrefix(err.Error(), "natsink: connect to "+url+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("connect error = %v; want one naming %s and %q", err, url, tt.want)
			}
			if took > 5*time.Second {
				t.Fatalf("connect took %v: a retry loop instead of a clear error", took)
			}
			t.Logf("%v", err)
		})
	}
}
