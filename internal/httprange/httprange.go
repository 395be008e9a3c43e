// Package httprange reads the Content-Range header of an HTTP 206 answer,
// which kiln's resumable downloads (model pulls from a catalogue or a
// kiln-manifest.json server, and from the Hugging Face Hub) check before
// they append a body to a partial file.
package httprange

import (
	"strconv"
	"strings"
)

// Parse reads "bytes FIRST-LAST/TOTAL" (RFC 9110, section 14.4). TOTAL may
// be "*", reported as -1. ok is false for anything else, including a range
// whose end lies before its start or at or past TOTAL.
func Parse(s string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || t <= last {
			return 0, 0, false
		}
		total = t
	}
	return first, total, true
}
