package hf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models/hf/hftest"
)

const (
	bigFile   = "unet/model.onnx_data" // LFS, 600 KiB: several reads
	smallFile = "unet/config.json"     // kept in git
)

// resolved sets up a fake Hub with onnxRepo as org/turbo (gated, so the
// token matters) and resolves it.
func resolved(t *testing.T, opts Options) (*hftest.Hub, *Client, *sleeper, *Snapshot) {
	t.Helper()
	h := newFakeHub(t)
	h.AddRepo("org/turbo", onnxRepo())
	h.SetGated("org/turbo", true)
	c, sl := newTestClient(t, h, map[string]string{"HF_TOKEN": goodToken}, opts)
	s, err := c.Resolve(context.Background(), Ref{Repo: "org/turbo"})
	if err != nil {
		t.Fatal(err)
	}
	return h, c, sl, s
}

func fileOf(t *testing.T, s *Snapshot, p string) File {
	t.Helper()
	for _, f := range s.Files {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("%s is not in the snapshot", p)
	return File{}
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestDownload(t *testing.T) {
	data := onnxRepo()[bigFile]
	half := len(data) / 2
	tests := []struct {
		name    string
		file    string
		prefill int // bytes of the file already in the target
		corrupt bool
		cdnHook func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool
		// what the CDN must have been asked, in order ("" = no range)
		wantRanges  []string
		wantWaits   []time.Duration
		wantResumed bool
	}{
		{name: "LFS file through the CDN", file: bigFile, wantRanges: []string{""}},
		{name: "small file from the Hub", file: smallFile},
		{name: "dropped connection resumes with a range", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				if n == 1 {
					dropAfter(w, r, data, half)
					return true
				}
				return false
			},
			wantRanges: []string{"", "bytes=" + strconv.Itoa(half) + "-"}, wantWaits: []time.Duration{time.Second}},
		{name: "partial file resumes", file: bigFile, prefill: 1000,
			wantRanges: []string{"bytes=1000-"}, wantResumed: true},
		{name: "complete partial file is only checked", file: bigFile, prefill: len(data), wantResumed: true},
		{name: "server ignores the range", file: bigFile, prefill: 1000,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.Write(data)
				return true
			},
			wantRanges: []string{"bytes=1000-"}},
		{name: "corrupt partial file is downloaded again", file: bigFile, prefill: 1000, corrupt: true,
			wantRanges: []string{"bytes=1000-", ""}, wantWaits: []time.Duration{0}},
		{name: "429 with Retry-After", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "7")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return true
				}
				return false
			},
			wantRanges: []string{"", ""}, wantWaits: []time.Duration{7 * time.Second}},
		{name: "503 then 502 back off", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				switch n {
				case 1:
					http.Error(w, "down", http.StatusServiceUnavailable)
				case 2:
					http.Error(w, "bad gateway", http.StatusBadGateway)
				default:
					return false
				}
				return true
			},
			wantRanges: []string{"", "", ""}, wantWaits: []time.Duration{time.Second, 2 * time.Second}},
		{name: "expired CDN signature", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				if n == 1 {
					http.Error(w, "Request has expired", http.StatusForbidden)
					return true
				}
				return false
			},
			wantRanges: []string{"", ""}, wantWaits: []time.Duration{time.Second}},
		{name: "chunked body ends early", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				if n == 1 {
					w.Write(data[:half]) // no Content-Length: chunked, ends cleanly
					w.(http.Flusher).Flush()
					return true
				}
				return false
			},
			wantRanges: []string{"", "bytes=" + strconv.Itoa(half) + "-"}, wantWaits: []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, sl, s := resolved(t, Options{})
			h.SetCDNHook(tt.cdnHook)
			f := fileOf(t, s, tt.file)
			want := onnxRepo()[tt.file]
			dst := &memFile{}
			if tt.prefill > 0 {
				pre := append([]byte(nil), want[:tt.prefill]...)
				if tt.corrupt {
					pre[0] ^= 0xff
				}
				dst.WriteAt(pre, 0)
			}
			before := len(h.Requests("cdn"))
			res, err := c.Download(context.Background(), s, f, dst, int64(tt.prefill))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dst.bytes(), want) {
				t.Fatalf("downloaded %d bytes differing from the file's %d", len(dst.bytes()), len(want))
			}
			if res.SHA256 != sum(want) || res.Size != int64(len(want)) || res.Resumed != tt.wantResumed {
				t.Errorf("result %+v, want sha256 %s, size %d, resumed %v", res, sum(want), len(want), tt.wantResumed)
			}
			var ranges []string
			for _, r := range h.Requests("cdn")[before:] {
				ranges = append(ranges, r.Range)
				if r.Auth != "" {
					t.Errorf("the CDN got Authorization %q: the token must stay on the Hub", r.Auth)
				}
			}
			if fmt.Sprint(ranges) != fmt.Sprint(tt.wantRanges) {
				t.Errorf("CDN ranges %q, want %q", ranges, tt.wantRanges)
			}
			for _, r := range h.Requests("hub") {
				if r.Auth != "Bearer "+goodToken {
					t.Errorf("hub request %s %s without the token", r.Method, r.Path)
				}
				if strings.Contains(r.Path, "/resolve/") && !strings.Contains(r.Path, "/resolve/"+s.Commit+"/") {
					t.Errorf("download not pinned to the commit: %s", r.Path)
				}
			}
			if w := sl.got(); fmt.Sprint(w) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits %v, want %v", w, tt.wantWaits)
			}
		})
	}
}

func TestDownloadFailures(t *testing.T) {
	data := onnxRepo()[bigFile]
	other := sum([]byte("another file"))
	tests := []struct {
		name     string
		file     string
		edit     func(f *File, s *Snapshot)
		opts     Options
		cdnHook  func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool
		is       error
		checksum bool     // want a *ChecksumError
		want     []string // substrings of the message
		wantCDN  int      // CDN requests, -1: any
		wantSize int64    // Result.Size
	}{
		{name: "truncated every time", file: bigFile, opts: Options{Retries: 2},
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				dropAfter(w, r, data, 1000)
				return true
			},
			is: ErrTruncated, want: []string{"connection closed after 1000", "gave up after 3 attempts"}, wantCDN: 3, wantSize: 3000},
		{name: "wrong data", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				bad := append([]byte(nil), data...)
				bad[len(bad)-1] ^= 1
				w.Write(bad)
				return true
			},
			checksum: true, want: []string{"unet/model.onnx_data is corrupt: expected sha256 " + sum(data)}, wantCDN: 1},
		{name: "small file against its git blob id", file: smallFile,
			edit:     func(f *File, s *Snapshot) { f.GitOID = strings.Repeat("0", 40) },
			checksum: true, want: []string{"expected git-sha1 " + strings.Repeat("0", 40)}, wantCDN: 0},
		{name: "small file against the lock's sha256", file: smallFile,
			edit:     func(f *File, s *Snapshot) { f.SHA256, f.GitOID = other, "" },
			checksum: true, want: []string{"expected sha256 " + other}, wantCDN: 0},
		{name: "changed since the lock", file: bigFile,
			edit: func(f *File, s *Snapshot) { f.SHA256 = other },
			is:   ErrChanged, want: []string{"has sha256 " + sum(data) + " on the Hub, the file list or lock says " + other, "resolve hf:org/turbo again"}, wantCDN: 0},
		{name: "other size since the lock", file: bigFile,
			edit: func(f *File, s *Snapshot) { f.Size++ },
			is:   ErrChanged, want: []string{fmt.Sprintf("is %d bytes on the Hub, the file list or lock says %d", len(data), len(data)+1)}, wantCDN: 0},
		{name: "file gone", file: bigFile,
			edit: func(f *File, s *Snapshot) { f.Path = "unet/gone.onnx" },
			is:   ErrEntryNotFound, want: []string{`has no file "unet/gone.onnx" at commit`}, wantCDN: 0},
		{name: "commit gone", file: bigFile,
			edit: func(f *File, s *Snapshot) { s.Commit = commitOf("rewritten") },
			is:   ErrRevisionNotFound, want: []string{"no longer exists on the Hub", "pull hf:org/turbo again"}, wantCDN: 0},
		{name: "server sends more", file: bigFile,
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				w.Write(append(append([]byte(nil), data...), "extra"...)) // chunked: no length to check first
				return true
			},
			is: ErrChanged, want: []string{"sent more than the"}, wantCDN: 1, wantSize: -1},
		{name: "CDN refuses", file: bigFile, opts: Options{Retries: 1},
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				http.Error(w, "AccessDenied", http.StatusForbidden)
				return true
			},
			want: []string{"unexpected HTTP 403 Forbidden for " + "http://127.0.0.1", "/repos/ab/cd/" + sum(data) + "?…", "gave up after 2 attempts"}, wantCDN: 2},
		{name: "CDN unreachable", file: bigFile, opts: Options{Retries: 1},
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close() // before any answer
				}
				return true
			},
			want: []string{"Get http://127.0.0.1", "?…: EOF", "check the network connection"}, wantCDN: 2},
		{name: "stalled transfer", file: bigFile, opts: Options{Retries: 1, StallTimeout: 50 * time.Millisecond},
			cdnHook: func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.Write(data[:10])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return true
			},
			want: []string{"no data received for 50ms", "gave up after 2 attempts"}, wantCDN: 2, wantSize: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, _, s := resolved(t, tt.opts)
			h.SetCDNHook(tt.cdnHook)
			f := fileOf(t, s, tt.file)
			snap := *s
			if tt.edit != nil {
				tt.edit(&f, &snap)
			}
			dst := &memFile{}
			before := len(h.Requests("cdn"))
			res, err := c.Download(context.Background(), &snap, f, dst, 0)
			if err == nil {
				t.Fatalf("Download succeeded (%+v), want an error", res)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want errors.Is %v", err, tt.is)
			}
			var ce *ChecksumError
			if errors.As(err, &ce) != tt.checksum {
				t.Errorf("error %v: ChecksumError %v, want %v", err, ce != nil, tt.checksum)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if n := len(h.Requests("cdn")) - before; tt.wantCDN >= 0 && n != tt.wantCDN {
				t.Errorf("%d CDN requests, want %d", n, tt.wantCDN)
			}
			if tt.wantSize >= 0 && res.Size != tt.wantSize {
				t.Errorf("Result.Size %d, want %d", res.Size, tt.wantSize)
			}
			if strings.Contains(err.Error(), "Signature") {
				t.Errorf("error shows the CDN's signed URL: %v", err)
			}
			if res.SHA256 != "" {
				t.Errorf("Result.SHA256 %q on failure", res.SHA256)
			}
			if tt.wantCDN == 0 && tt.file == bigFile && len(dst.bytes()) != 0 {
				t.Errorf("%d bytes written although the download was refused", len(dst.bytes()))
			}
		})
	}
}

func TestDownloadRenamedRepository(t *testing.T) {
	h, c, _, s := resolved(t, Options{})
	h.Rename("old/name", "org/turbo")
	snap := *s
	snap.Ref.Repo = "old/name"
	for _, p := range []string{bigFile, smallFile} {
		dst := &memFile{}
		if _, err := c.Download(context.Background(), &snap, fileOf(t, s, p), dst, 0); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !bytes.Equal(dst.bytes(), onnxRepo()[p]) {
			t.Fatalf("%s: wrong data", p)
		}
	}
	// The relative redirect stays on the Hub, so the token goes along
	// (the gated repository answers only with it).
	var followed int
	for _, r := range h.Requests("hub") {
		if strings.HasPrefix(r.Path, "/org/turbo/resolve/") && r.Auth == "Bearer "+goodToken {
			followed++
		}
	}
	if followed < 3 {
		t.Errorf("%d requests followed the rename with the token", followed)
	}
}

func TestDownloadArguments(t *testing.T) {
	_, c, _, s := resolved(t, Options{})
	f := fileOf(t, s, bigFile)
	tests := []struct {
		name   string
		snap   *Snapshot
		file   File
		offset int64
		want   string
	}{
		{"no snapshot", nil, f, 0, "resolve the reference first"},
		{"no commit", &Snapshot{Ref: s.Ref}, f, 0, "resolve the reference first"},
		{"escaping path", s, File{Path: "../etc/passwd", Size: 1}, 0, `contains ".."`},
		{"absolute path", s, File{Path: "/etc/passwd", Size: 1}, 0, "is absolute"},
		{"offset past the end", s, f, f.Size + 1, "cannot resume at byte"},
		{"bad sha256", s, File{Path: f.Path, Size: f.Size, SHA256: "abc"}, 0, "not 64 hex digits"},
	}
	for _, tt := range tests {
		if _, err := c.Download(context.Background(), tt.snap, tt.file, &memFile{}, tt.offset); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDownloadCancelled(t *testing.T) {
	h, c, _, s := resolved(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	h.SetCDNHook(func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
		cancel()
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	_, err := c.Download(ctx, s, fileOf(t, s, bigFile), &memFile{}, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
