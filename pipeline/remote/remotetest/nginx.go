// Package remotetest runs remote caches for tests: a real nginx serving
// the Bazel HTTP cache protocol with WebDAV PUT, and a proxy that puts
// faults between a client and it. Everything listens on loopback only.
package remotetest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nginx is an nginx process serving a remote cache at URL, its files
// under Root/cache.
type Nginx struct {
	// URL is the cache's base URL, http://127.0.0.1:PORT/cache.
	URL string
	// Root is nginx's document root; entries are Root/cache/ac/... and
	// Root/cache/cas/....
	Root string
	cmd  *exec.Cmd
	done chan error
}

// NginxPath returns the nginx binary, or "" when it is not installed.
func NginxPath() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// StartNginx starts nginx as a plain process on a free loopback port,
// with its root, pid file, logs and temporary folders in a temporary
// folder, and stops it (by its PID) when the test ends. It skips the
// test when nginx is not installed.
func StartNginx(t testing.TB) *Nginx {
	t.Helper()
	bin := NginxPath()
	if bin == "" {
		t.Skip("nginx is not installed: ./taskw setup installs Debian's nginx package (with root or sudo), or apt-get install nginx")
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 {
		n, err := startNginx(bin, dir)
		if err == nil {
			t.Cleanup(n.stop)
			return n
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("start nginx: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

const nginxConf = `# A remote cache for kiln's tests: the Bazel HTTP cache protocol by WebDAV.
daemon off;
master_process on;
worker_processes 1;
%s
pid %s;
error_log %s warn;
events { worker_connections 256; }
http {
    access_log %s;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    server {
        listen 127.0.0.1:%d;
        root %s;
        location /cache/ {
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 0;
        }
    }
}
`

func startNginx(bin, dir string) (*Nginx, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	root := filepath.Join(dir, "root")
	for _, d := range []string{root, filepath.Join(root, "cache"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot write a test's
		// temporary folder.
		user = "user root root;"
	}
	tmp := func(name string) string { return filepath.Join(dir, "tmp", name) }
	errLog := filepath.Join(dir, "error.log")
	conf := fmt.Sprintf(nginxConf, user, filepath.Join(dir, "nginx.pid"), errLog, "off",
		tmp("body"), tmp("proxy"), tmp("fastcgi"), tmp("uwsgi"), tmp("scgi"), port, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	os.Remove(errLog)
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", errLog)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	n := &Nginx{URL: fmt.Sprintf("http://127.0.0.1:%d/cache", port), Root: root, cmd: cmd, done: make(chan error, 1)}
	go func() { n.done <- cmd.Wait() }()
	// Wait until it answers (or exits): an event, bounded generously.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-n.done:
			log, _ := os.ReadFile(errLog)
			if strings.Contains(string(log), "Address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("nginx exited (%v): %s", err, log)
		default:
		}
		resp, err := client.Head(n.URL + "/ready-check")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("nginx did not answer on port %d within a minute", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends nginx by its PID and waits for it.
func (n *Nginx) stop() {
	if n.cmd.Process == nil {
		return
	}
	syscall.Kill(n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
}

// Files lists the entries nginx holds, as "ac/<hash>" and "cas/<hash>".
func (n *Nginx) Files(t testing.TB) []string {
	t.Helper()
	var out []string
	base := filepath.Join(n.Root, "cache")
	filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(base, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// Wipe removes every entry, as a server that lost its disk.
func (n *Nginx) Wipe(t testing.TB) {
	t.Helper()
	base := filepath.Join(n.Root, "cache")
	if err := os.RemoveAll(base); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
}
