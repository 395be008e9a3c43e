package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPreviewLoopbackOnly checks that kiln watch --serve refuses any
// address but loopback unless --allow-remote is given.
func TestPreviewLoopbackOnly(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	writeFiles(t, p, map[string]string{"kiln.yaml": imageConfig, "m.kiln.yaml": "version: 1\nassets: []\n"})
	for addr, why := range map[string]string{
		"0.0.0.0:0":      "0.0.0.0:0",
		":0":             ":0 (every network interface)",
		"[::]:0":         "[::]:0",
		"192.0.2.1:8080": "192.0.2.1:8080",
	} {
		r := kiln(t, p, "watch", "--serve", addr)
		want := "kiln: refusing to serve on " + why + ": the preview exposes your project's files; use 127.0.0.1 or pass --allow-remote"
		if r.code != 2 || strings.TrimSpace(r.stderr) != want {
			t.Errorf("watch --serve %s: exit %d, stderr:\n%s\nwant exit 2 and:\n%s", addr, r.code, r.stderr, want)
		}
	}
}

// TestPreviewPathTricks starts kiln watch --serve on loopback and sends
// raw requests (no client cleans their paths) that try to read outside
// the output folder or come from another site: each is refused, and the
// secret next to the output folder never appears in a response.
func TestPreviewPathTricks(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	const secret = "the project's private notes"
	writeFiles(t, p, map[string]string{"kiln.yaml": imageConfig, "secret.txt": secret, "art/a.png": pngBytes(1),
		"m.kiln.yaml": "version: 1\nassets:\n  - {id: a, kind: image, image: {source: art/a.png}}\n"})
	if err := os.MkdirAll(filepath.Join(p, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, p, "out/link.png", filepath.Join(p, "secret.txt"))
	cmd := exec.Command(kilnBin, "watch", "--serve", "127.0.0.1:0")
	cmd.Dir = p
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	// Should watch never print what is awaited, do not hang the suite.
	watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	lines := bufio.NewScanner(stderr)
	var addr string
	built := false
	for (addr == "" || !built) && lines.Scan() {
		if m := regexp.MustCompile(`^preview: http://(127\.0\.0\.1:\d+)`).FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
		built = built || strings.Contains(lines.Text(), "initial build →")
	}
	if addr == "" {
		t.Fatal("kiln watch printed no preview address")
	}
	go func() {
		for lines.Scan() {
		}
	}()
	get := func(target, host string) (int, string) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp := b.String()
		code := 0
		if f := strings.Fields(resp); len(f) > 1 {
			code = atoi(f[1])
		}
		return code, resp
	}
	tests := []struct {
		target, host string
		code         int
	}{
		{"/out/a.png", addr, 200},
		{"/out/../secret.txt", addr, 400},
		{"/out/%2e%2e/secret.txt", addr, 400},
		{"/out/..%2fsecret.txt", addr, 400},
		{"/out/..%5csecret.txt", addr, 400},
		{"/out//" + strings.TrimPrefix(filepath.Join(p, "secret.txt"), "/"), addr, 400},
		{"/out/link.png", addr, 400},
		{"/../secret.txt", addr, 400},
		{"/secret.txt", addr, 404},
		{"/out/a.png", "evil.example", 421},
	}
	for _, tt := range tests {
		code, resp := get(tt.target, tt.host)
		if code != tt.code {
			t.Errorf("GET %s (Host %s): status %d, want %d", tt.target, tt.host, code, tt.code)
		}
		if strings.Contains(resp, secret) {
			t.Errorf("GET %s (Host %s): the secret leaked", tt.target, tt.host)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return n
		}
		n = n*10 + int(c-'0')
	}
	return n
}
