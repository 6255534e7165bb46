package httpprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzResponse answers the probe's request with arbitrary bytes over TLS,
// "@@" replaced by the credential's secret: no panic, no hang, a result the
// hub accepts, and never the secret in it.
func FuzzResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: https://u:@@@127.0.0.1:1/@@?t=@@\r\n\r\n",
		"HTTP/1.1 @@\r\n\r\n",
		"HTTP/1.1 200 @@\r\nX-A: @@\r\n\r\n@@",
		"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00",
		"\x00\xff garbage",
	} {
		f.Add([]byte(seed))
	}
	ca := newCA(f)
	cert := ca.leaf(f, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		f.Fatal(err)
	}
	var reply atomic.Pointer[[]byte]
	var wg sync.WaitGroup
	f.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 4096)
				_, _ = c.Read(buf) // the request; its end does not matter
				_, _ = c.Write(*reply.Load())
			})
		}
	})
	url := "https://" + ln.Addr().String() + "/"
	f.Fuzz(func(t *testing.T, data []byte) {
		out := bytes.ReplaceAll(data, []byte("@@"), []byte(distinctiveSecret))
		reply.Store(&out)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		res := Probe(ctx, target(map[string]any{"url": url, "ca": ca.pem, "credential": "web", "timeout": 2}), vault)
		// Generous: the bound is there to catch a hang, not to time a busy
		// machine.
		if el := time.Since(start); el > 8*time.Second {
			t.Fatalf("took %v with a 2 s timeout", el)
		}
		assertValid(t, res)
		for _, s := range resultStrings(res) {
			if strings.Contains(s, distinctiveSecret) {
				t.Fatalf("secret in %q", s)
			}
		}
	})
}
