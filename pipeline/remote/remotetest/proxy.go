package remotetest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Fault is what the proxy does to a request a Rule matches.
type Fault int

// The faults a remote cache can show.
const (
	// Pass forwards the request.
	Pass Fault = iota
	// Hang never answers: the client must give up (its timeout).
	Hang
	// Unavailable answers 503 Service Unavailable.
	Unavailable
	// ServerError answers 500 Internal Server Error.
	ServerError
	// Forbidden answers 403 Forbidden.
	Forbidden
	// NotFound answers 404 Not Found, whatever the server holds.
	NotFound
	// Reset reads the request, then resets the connection (TCP RST),
	// answering nothing.
	Reset
	// Truncate forwards the answer's headers (its Content-Length
	// included) and half its body, then closes the connection.
	Truncate
	// Corrupt forwards the answer with one byte of its body changed.
	Corrupt
	// Replace answers 200 with Rule.Body, whatever the server holds.
	Replace
)

var faultNames = map[Fault]string{Pass: "pass", Hang: "hang", Unavailable: "503", ServerError: "500", Forbidden: "403", NotFound: "404",
	Reset: "reset", Truncate: "truncate", Corrupt: "corrupt", Replace: "replace"}

func (f Fault) String() string { return faultNames[f] }

// Rule selects requests and the fault they meet.
type Rule struct {
	// Method ("GET", "PUT", "HEAD") and Kind ("ac", "cas") select
	// requests; "" matches any.
	Method, Kind string
	Fault        Fault
	// Body is the answer of Replace.
	Body []byte
	// Times, when above 0, applies the rule to that many requests only.
	Times int
}

// Proxy sits between a client and a remote cache and injects faults.
type Proxy struct {
	// URL is the proxy's base URL (the upstream's path, another port).
	URL string

	upstream string
	srv      *httptest.Server
	client   *http.Client
	closing  chan struct{}

	mu    sync.Mutex
	rules []*Rule
	seen  []string
	// Hung receives the path of each request that Hang holds.
	Hung chan string
}

// NewProxy starts a proxy in front of the cache at base (an http URL
// with a path), closed when the test ends.
func NewProxy(t testing.TB, base string) *Proxy {
	t.Helper()
	scheme, rest, ok := strings.Cut(base, "://")
	host, path, _ := strings.Cut(rest, "/")
	if !ok || scheme != "http" {
		t.Fatalf("proxy upstream %q: want http://HOST/PATH", base)
	}
	p := &Proxy{
		upstream: "http://" + host,
		client:   &http.Client{Transport: &http.Transport{Proxy: nil}},
		closing:  make(chan struct{}),
		Hung:     make(chan string, 1024),
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL + "/" + path
	t.Cleanup(func() {
		close(p.closing)
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

// Set replaces the rules; the first matching rule applies.
func (p *Proxy) Set(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	for i := range rules {
		r := rules[i]
		p.rules = append(p.rules, &r)
	}
}

// Seen returns the requests so far, as "METHOD kind fault".
func (p *Proxy) Seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// Count counts the requests with method (and kind, unless "") so far.
func (p *Proxy) Count(method, kind string) int {
	n := 0
	for _, s := range p.Seen() {
		f := strings.Fields(s)
		if f[0] == method && (kind == "" || f[1] == kind) {
			n++
		}
	}
	return n
}

// kindOf returns "ac" or "cas" for a request path .../ac/<hash>.
func kindOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 2 {
		return parts[len(parts)-2]
	}
	return ""
}

func (p *Proxy) match(method, kind string) (Fault, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if (r.Method == "" || r.Method == method) && (r.Kind == "" || r.Kind == kind) {
			if r.Times < 0 {
				continue
			}
			if r.Times > 0 {
				r.Times--
				if r.Times == 0 {
					r.Times = -1
				}
			}
			p.seen = append(p.seen, fmt.Sprintf("%s %s %s", method, kind, r.Fault))
			return r.Fault, r.Body
		}
	}
	p.seen = append(p.seen, fmt.Sprintf("%s %s %s", method, kind, Pass))
	return Pass, nil
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	fault, body := p.match(r.Method, kindOf(r.URL.Path))
	switch fault {
	case Hang:
		select {
		case p.Hung <- r.URL.Path:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-p.closing:
		}
		return
	case Unavailable:
		http.Error(w, "injected fault", http.StatusServiceUnavailable)
		return
	case ServerError:
		http.Error(w, "injected fault", http.StatusInternalServerError)
		return
	case Forbidden:
		http.Error(w, "injected fault", http.StatusForbidden)
		return
	case NotFound:
		http.Error(w, "injected miss", http.StatusNotFound)
		return
	case Reset:
		io.Copy(io.Discard, r.Body)
		reset(w)
		return
	case Replace:
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
		return
	}
	resp, data, err := p.forward(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	switch {
	case fault == Truncate && resp.StatusCode == http.StatusOK && len(data) > 0:
		conn := hijack(w)
		if conn == nil {
			return
		}
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", len(data))
		conn.Write(data[:len(data)/2])
		conn.Close()
		return
	case fault == Corrupt && resp.StatusCode == http.StatusOK:
		if len(data) == 0 {
			data = []byte{0}
		} else {
			data = bytes.Clone(data)
			data[len(data)/2] ^= 0x55
		}
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	if r.Method != http.MethodHead {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	} else if cl := resp.Header.Get("Content-Length"); cl != "" {
		w.Header().Set("Content-Length", cl)
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// forward sends r to the upstream and reads the whole answer.
func (p *Proxy) forward(r *http.Request) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = r.ContentLength
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// hijack takes the connection over from the server.
func hijack(w http.ResponseWriter) net.Conn {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil
	}
	if buf != nil && buf.Writer.Buffered() > 0 {
		buf.Flush()
	}
	return conn
}

// reset closes the connection with a TCP reset.
func reset(w http.ResponseWriter) {
	conn := hijack(w)
	if conn == nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
