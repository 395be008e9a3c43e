// Package preview serves kiln's output folder and a live page of every
// asset to a browser while kiln watch runs: current images, atlases and
// materials, per-stage status and errors, updated through Server-Sent
// Events whenever a build finishes. Tileable textures are shown tiled,
// sprite sheets animate at their frame rate, and glTF materials are drawn
// by a small WebGL viewer. The page, its script and its styles are
// embedded in the binary; nothing loads from the internet.
//
// The server listens on loopback only unless told otherwise, serves only
// regular files inside the output folder, and rejects requests whose Host
// header is not a loopback name (DNS rebinding).
package preview

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-dev/kiln/internal/safepath"
)

//go:embed static
var static embed.FS

// DefaultAddr is the address served when Options.Addr is empty: a port
// the system chooses, on loopback.
const DefaultAddr = "127.0.0.1:0"

// Options configure a Server.
type Options struct {
	// OutDir is kiln's output folder: the only files served. Required.
	OutDir string
	// Addr is the host:port to listen on. Default: DefaultAddr. A
	// non-loopback host (or an empty one, meaning every interface) is
	// refused unless AllowRemote.
	Addr string
	// AllowRemote allows a non-loopback Addr and any Host header.
	AllowRemote bool
	// Log receives diagnostics. Default: discarded.
	Log *slog.Logger
}

// Server is the preview HTTP server. Make one with New; it is safe for
// concurrent use.
type Server struct {
	o       Options
	outDir  string // absolute
	mux     *http.ServeMux
	closing chan struct{}
	once    sync.Once

	mu      sync.Mutex
	seq     int
	state   []byte // JSON of the current State
	status  []byte // JSON of the current build status event
	clients map[chan struct{}]bool
	srv     *http.Server
	ln      net.Listener
	served  chan struct{} // closed when Serve returns
}

// New checks o and returns a Server that is not listening yet (see Start
// and Handler). It refuses a non-loopback address unless o.AllowRemote.
func New(o Options) (*Server, error) {
	if o.OutDir == "" {
		return nil, errors.New("preview: Options.OutDir is required")
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := checkAddr(o.Addr, o.AllowRemote); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(o.OutDir)
	if err != nil {
		return nil, fmt.Errorf("resolve output folder %s: %w", o.OutDir, err)
	}
	s := &Server{
		o:       o,
		outDir:  out,
		closing: make(chan struct{}),
		clients: map[chan struct{}]bool{},
	}
	s.state, _ = json.Marshal(State{Assets: []Asset{}, Atlases: []Atlas{}, Materials: []Material{}, OK: true})
	s.status = []byte(`{"building":false}`)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.serveIndex)
	s.mux.HandleFunc("GET /_kiln/{name}", s.serveStatic)
	s.mux.HandleFunc("GET /state", s.serveState)
	s.mux.HandleFunc("GET /events", s.serveEvents)
	s.mux.HandleFunc("GET /out/", s.serveOut)
	s.mux.HandleFunc("GET /out", http.NotFound) // not a redirect to the folder: there is no listing
	return s, nil
}

// checkAddr refuses addresses that would expose the project beyond this
// machine.
func checkAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("preview address %q: %w; give host:port, such as 127.0.0.1:8080", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("preview address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if allowRemote || isLoopbackHost(host) {
		return nil
	}
	where := addr
	if host == "" {
		where = addr + " (every network interface)"
	}
	return fmt.Errorf("refusing to serve on %s: the preview exposes your project's files; use 127.0.0.1 or pass --allow-remote", where)
}

// isLoopbackHost reports whether host names this machine only: a
// loopback IP or "localhost".
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Handler returns the server's HTTP handler, for tests and for embedding
// in another server.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP applies the checks common to every request, then routes it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.o.AllowRemote {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopbackHost(host) {
			// A page on another site can resolve its own name to
			// 127.0.0.1 (DNS rebinding); it then sends its own Host.
			http.Error(w, "preview: requests must be addressed to localhost or 127.0.0.1", http.StatusMisdirectedRequest)
			return
		}
	}
	if p := r.URL.Path; !strings.HasPrefix(p, "/") || (p != "/" && path.Clean(p) != p) || !rawClean(r.URL.EscapedPath()) {
		// Refuse rather than redirect to a cleaned path: nothing the
		// page asks for is written this way.
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

// Start listens on the configured address and serves in the background
// until Close. After it returns, URL gives the address to open.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("preview: listen on %s: %w (is another program using the port? pick another with --serve 127.0.0.1:PORT)", s.o.Addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !s.o.AllowRemote && !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("refusing to serve on %s: %s resolved to a non-loopback address; use 127.0.0.1 or pass --allow-remote", tcp, s.o.Addr)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.srv, s.ln, s.served = srv, ln, make(chan struct{})
	served := s.served
	s.mu.Unlock()
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.o.Log.Error("preview server stopped", "err", err)
		}
	}()
	return nil
}

// URL returns the page's address ("http://127.0.0.1:41234/") once Start
// has succeeded, or "".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String() + "/"
}

// Close ends every event stream and stops the server started by Start.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.mu.Lock()
	srv, served := s.srv, s.served
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	<-served
	return err
}

// Publish makes st the state every page shows, and sends it to every open
// page. Files without a Version get one from their size and modification
// time. It never blocks on slow pages: each gets the latest state when
// it is ready.
func (s *Server) Publish(st State) {
	st = st.clone()
	if st.Time.IsZero() {
		st.Time = time.Now()
	}
	st.files(func(f *File) {
		if f.Version == "" {
			f.Version = s.fileVersion(f.Path)
		}
	})
	if st.Assets == nil {
		st.Assets = []Asset{}
	}
	if st.Atlases == nil {
		st.Atlases = []Atlas{}
	}
	if st.Materials == nil {
		st.Materials = []Material{}
	}
	s.mu.Lock()
	s.seq++
	st.Seq = s.seq
	data, err := json.Marshal(st)
	if err != nil {
		s.mu.Unlock()
		s.o.Log.Error("preview: encode state", "err", err)
		return
	}
	s.state = data
	s.status = []byte(`{"building":false}`)
	s.notifyLocked()
	s.mu.Unlock()
}

// Building tells open pages that a build started for the changed files,
// so they can show it; the next Publish ends it.
func (s *Server) Building(changed []string) {
	data, err := json.Marshal(struct {
		Building bool     `json:"building"`
		Changed  []string `json:"changed,omitempty"`
	}{true, changed})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.status = data
	s.notifyLocked()
	s.mu.Unlock()
}

// notifyLocked wakes every event stream. s.mu must be held.
func (s *Server) notifyLocked() {
	for c := range s.clients {
		select {
		case c <- struct{}{}:
		default: // already woken; it will read the latest state
		}
	}
}

// fileVersion is a cache-busting version from a file's size and
// modification time, or "" if it cannot be read.
func (s *Server) fileVersion(rel string) string {
	p, err := safepath.Join(s.outDir, rel)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(p)
	if err != nil {
		return ""
	}
	return strconv.FormatInt(fi.ModTime().UnixNano(), 36) + "-" + strconv.FormatInt(fi.Size(), 36)
}

// contentPolicy forbids the page any resource not from this server.
const contentPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	data, err := static.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "preview page missing from this build of kiln", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentPolicy)
	h.Set("Cache-Control", "no-cache")
	w.Write(data)
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "index.html" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	data, err := static.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(data)
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data := s.state
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// serveEvents streams the state (event "state") and build status (event
// "status") to one page: both at once on connecting, then whenever they
// change, with a comment every 15 s so proxies and browsers keep the
// connection open.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.clients[wake] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, wake)
		s.mu.Unlock()
	}()

	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	sentSeq, sentStatus := -1, ""
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		s.mu.Lock()
		seq, state, status := s.seq, s.state, s.status
		s.mu.Unlock()
		if seq != sentSeq {
			if _, err := fmt.Fprintf(w, "id: %d\nevent: state\ndata: %s\n\n", seq, state); err != nil {
				return
			}
			sentSeq = seq
		}
		if string(status) != sentStatus {
			if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", status); err != nil {
				return
			}
			sentStatus = string(status)
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-wake:
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}

// serveOut serves one regular file from the output folder. The path
// after /out/ must be a clean relative path: no "..", ".", empty or
// hidden elements, no backslashes or NUL bytes, in its decoded or its
// raw form, and no symlink on the way may lead outside the output folder.
func (s *Server) serveOut(w http.ResponseWriter, r *http.Request) {
	rel, ok := strings.CutPrefix(r.URL.Path, "/out/")
	if !ok || !cleanRel(rel) || !rawClean(r.URL.EscapedPath()) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	p, err := safepath.Join(s.outDir, rel)
	if err != nil {
		if errors.Is(err, safepath.ErrUnsafe) {
			http.Error(w, "bad path", http.StatusBadRequest)
		} else {
			http.NotFound(w, r)
		}
		return
	}
	// Opening a named pipe would block until something writes to it:
	// look before opening, and check again what was opened.
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if ctype := contentType(rel); ctype != "" {
		h.Set("Content-Type", ctype)
	}
	// Output files are data, never pages: a crafted .html or .svg in the
	// output folder must not run script with this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
	// The page puts a version in every URL; revalidating is cheap on
	// loopback and keeps a file fetched without one current.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, path.Base(rel), fi.ModTime(), f)
}

// cleanRel reports whether rel is a canonical relative path with no
// element that could mean something other than a name in its folder.
func cleanRel(rel string) bool {
	if rel == "" || strings.ContainsAny(rel, "\\\x00") || safepath.Validate(rel) != nil {
		return false
	}
	for _, e := range strings.Split(rel, "/") {
		if e == "" || e == "." || e == ".." || strings.HasPrefix(e, ".") || strings.ContainsRune(e, ':') {
			return false
		}
	}
	return true
}

// rawClean reports whether the raw (still escaped) path is free of
// encoded tricks: an encoded slash, backslash, NUL or dot ("%2e%2e"),
// which a proxy or a later decoder could turn into a traversal.
func rawClean(raw string) bool {
	lower := strings.ToLower(raw)
	for _, bad := range []string{"%2f", "%5c", "%00", "%2e", "%25"} {
		if strings.Contains(lower, bad) {
			return false
		}
	}
	return !strings.Contains(raw, `\`)
}

// contentType picks a Content-Type for an output file by extension,
// with glTF types the system's tables may not know.
func contentType(rel string) string {
	switch strings.ToLower(path.Ext(rel)) {
	case ".gltf":
		return "model/gltf+json"
	case ".glb":
		return "model/gltf-binary"
	case ".bin":
		return "application/octet-stream"
	case ".tres", ".atlas", ".gpl", ".hex":
		return "text/plain; charset=utf-8"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	}
	if t := mime.TypeByExtension(path.Ext(rel)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// staticNames lists the embedded files, for tests.
func staticNames() ([]string, error) {
	var names []string
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, "static/"))
		}
		return err
	})
	return names, err
}
