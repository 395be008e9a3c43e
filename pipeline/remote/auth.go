package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Credentials are where the client may find credentials: the
// environment (a bearer token, or a user and password for basic auth)
// and a netrc file. kiln.yaml never holds any.
//
// Environment credentials are sent only to a URL that the environment or
// the command line chose (Settings.FromCheckout false): a kiln.yaml that
// came with a checkout cannot name a server of its own and have a CI
// job's token sent there. A netrc entry names its host, so it is used
// whatever chose the URL, for that host only.
type Credentials struct {
	// Getenv reads the environment (os.Getenv).
	Getenv func(string) string
	// Netrc is the netrc file; "" means $NETRC, else ~/.netrc (a
	// missing file is no credentials).
	Netrc string
}

// maxNetrc bounds a netrc file.
const maxNetrc = 1 << 20

// resolve returns the function that adds s's credentials to a request.
func (c Credentials) resolve(s Settings, u *url.URL) (func(*http.Request), []string, error) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var warnings []string
	token, user, pass := getenv(EnvToken), getenv(EnvUser), getenv(EnvPassword)
	var auth func(*http.Request)
	switch {
	case (token != "" || user != "") && s.FromCheckout:
		warnings = append(warnings, fmt.Sprintf("%s or %s is set, but the remote cache %s comes from %s; kiln sends credentials from the environment "+
			"only to a cache named by --remote-cache or %s (so that a checkout cannot send them elsewhere): set %s too, or put the credentials in ~/.netrc",
			EnvToken, EnvUser, u, s.Where, EnvURL, EnvURL))
	case token != "" && user != "":
		return nil, nil, fmt.Errorf("both %s and %s are set; set one of them (a bearer token, or basic auth)", EnvToken, EnvUser)
	case token != "":
		if strings.ContainsAny(token, "\r\n") {
			return nil, nil, fmt.Errorf("%s holds a line break; give the token alone", EnvToken)
		}
		auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	case user != "":
		auth = func(r *http.Request) { r.SetBasicAuth(user, pass) }
	case pass != "":
		warnings = append(warnings, fmt.Sprintf("%s is set without %s; not used", EnvPassword, EnvUser))
	}
	if auth == nil {
		login, password, found, err := c.lookupNetrc(getenv, u.Hostname())
		if err != nil {
			warnings = append(warnings, err.Error())
		}
		if found {
			auth = func(r *http.Request) { r.SetBasicAuth(login, password) }
		}
	}
	if auth != nil && u.Scheme == "http" && !loopback(u.Hostname()) {
		warnings = append(warnings, fmt.Sprintf("credentials for the remote cache %s travel over plain http, readable on the network; use https", u))
	}
	return auth, warnings, nil
}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lookupNetrc finds host's login and password in the netrc file. A
// "default" entry is not used: it would send one password to every
// server a checkout could name.
func (c Credentials) lookupNetrc(getenv func(string) string, host string) (login, password string, found bool, err error) {
	p := c.Netrc
	if p == "" {
		p = getenv("NETRC")
	}
	if p == "" {
		home, herr := os.UserHomeDir()
		if herr != nil {
			return "", "", false, nil
		}
		p = filepath.Join(home, ".netrc")
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", false, nil
		}
		return "", "", false, fmt.Errorf("netrc: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", "", false, fmt.Errorf("netrc %s is not a regular file; not used", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxNetrc+1))
	if err != nil {
		return "", "", false, fmt.Errorf("netrc %s: %w", p, err)
	}
	if len(data) > maxNetrc {
		return "", "", false, fmt.Errorf("netrc %s is larger than %d bytes; not used", p, maxNetrc)
	}
	for _, m := range parseNetrc(data) {
		if m.machine == host {
			return m.login, m.password, true, nil
		}
	}
	return "", "", false, nil
}

// netrcMachine is one machine entry of a netrc file.
type netrcMachine struct {
	machine, login, password string
}

// parseNetrc reads the machine entries of a netrc file: "machine",
// "login", "password", "account" and "default" tokens separated by
// white space, "macdef" definitions (skipped up to a blank line), and
// double-quoted values with backslash escapes, as curl reads them.
func parseNetrc(data []byte) []netrcMachine {
	var out []netrcMachine
	var cur *netrcMachine
	toks := netrcTokens(data)
	for i := 0; i < len(toks); i++ {
		next := func() string {
			if i+1 < len(toks) {
				i++
				return toks[i].s
			}
			return ""
		}
		switch toks[i].s {
		case "machine":
			out = append(out, netrcMachine{machine: next()})
			cur = &out[len(out)-1]
		case "default":
			cur = nil // not used; see lookupNetrc
		case "login":
			if v := next(); cur != nil {
				cur.login = v
			}
		case "password":
			if v := next(); cur != nil {
				cur.password = v
			}
		case "account":
			next()
		case "macdef":
			next()
			// The definition runs to the first blank line.
			end := blankLine(data, toks[i].end)
			for i+1 < len(toks) && toks[i+1].end <= end {
				i++
			}
		}
	}
	return out
}

// netrcToken is a token and where it ends.
type netrcToken struct {
	s   string
	end int
}

// netrcTokens splits a netrc file into tokens.
func netrcTokens(data []byte) []netrcToken {
	var toks []netrcToken
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for i := 0; i < len(data); {
		if space(data[i]) {
			i++
			continue
		}
		var b []byte
		if data[i] == '"' {
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' && i+1 < len(data) {
					i++
				}
				b = append(b, data[i])
				i++
			}
			i++ // the closing quote
		} else {
			for i < len(data) && !space(data[i]) {
				b = append(b, data[i])
				i++
			}
		}
		toks = append(toks, netrcToken{s: string(b), end: min(i, len(data))})
	}
	return toks
}

// blankLine returns the offset of the first blank line at or after off
// (len(data) when there is none).
func blankLine(data []byte, off int) int {
	if i := bytes.Index(data[off:], []byte("\n\n")); i >= 0 {
		return off + i
	}
	if i := bytes.Index(data[off:], []byte("\n\r\n")); i >= 0 {
		return off + i
	}
	return len(data)
}
