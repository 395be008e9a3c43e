package remote

import (
	"strings"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	yaml := &Settings{URL: "https://cache.studio/kiln", Upload: false, CAFile: "/etc/ca.pem", Timeout: time.Second, Where: "kiln.yaml:5:3"}
	cases := []struct {
		name     string
		flag     string
		env      map[string]string
		checkout *Settings
		want     string // "URL mode from-checkout CA", or "off", or "error: ..."
	}{
		{name: "none", want: "off"},
		{name: "kiln.yaml", checkout: yaml, want: "https://cache.studio/kiln read-only checkout /etc/ca.pem"},
		{name: "variable replaces kiln.yaml", env: map[string]string{EnvURL: "http://127.0.0.1:9/c"}, checkout: yaml, want: "http://127.0.0.1:9/c read-write env "},
		{name: "flag replaces the variable", flag: "https://b/x", env: map[string]string{EnvURL: "http://a/"}, want: "https://b/x read-write env "},
		{name: "flag off", flag: "off", env: map[string]string{EnvURL: "http://a/"}, checkout: yaml, want: "off"},
		{name: "variable off", env: map[string]string{EnvURL: "off"}, checkout: yaml, want: "off"},
		{name: "upload variable", env: map[string]string{EnvUpload: "true"}, checkout: yaml, want: "https://cache.studio/kiln read-write checkout /etc/ca.pem"},
		{name: "upload variable off", flag: "http://a/", env: map[string]string{EnvUpload: "0"}, want: "http://a/ read-only env "},
		{name: "CA variable, relative", flag: "https://a/", env: map[string]string{EnvCAFile: "certs/ca.pem"}, want: "https://a/ read-write env /work/certs/ca.pem"},
		{name: "CA variable ignored for kiln.yaml", env: map[string]string{EnvCAFile: "/x.pem"}, checkout: yaml, want: "https://cache.studio/kiln read-only checkout /etc/ca.pem"},
		{name: "bad upload variable", flag: "http://a/", env: map[string]string{EnvUpload: "maybe"}, want: "error: KILN_REMOTE_CACHE_UPLOAD"},
		{name: "bad variable URL", env: map[string]string{EnvURL: "ftp://a/"}, want: "error: KILN_REMOTE_CACHE: remote cache URL \"ftp://a/\": use an http:// or https://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Choose(tc.flag, func(k string) string { return tc.env[k] }, tc.checkout, "/work")
			var got string
			switch {
			case err != nil:
				got = "error: " + err.Error()
			case s == nil:
				got = "off"
			default:
				src := "env"
				if s.FromCheckout {
					src = "checkout"
				}
				got = strings.Join([]string{s.URL, s.Mode(), src, s.CAFile}, " ")
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	cases := map[string]string{
		"https://cache.example.com/kiln/": "",
		"http://127.0.0.1:8080":           "",
		"http://[::1]:8080/a/b":           "",
		"cache.example.com":               "http:// or https://",
		"ftp://cache/":                    "http:// or https://",
		"https://":                        "no host",
		"https://u:p@cache/":              "holds credentials",
		"https://cache/?a=b":              "query or a fragment",
		"https://cache/#x":                "query or a fragment",
		"https://cache/\x00":              "not a URL",
	}
	for in, want := range cases {
		u, err := ParseURL(in)
		switch {
		case want == "" && err != nil:
			t.Errorf("ParseURL(%q): %v", in, err)
		case want == "" && strings.HasSuffix(u.Path, "/"):
			t.Errorf("ParseURL(%q) keeps the trailing slash: %s", in, u)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ParseURL(%q): %v; want an error with %q", in, err, want)
		}
	}
	if err := CheckFlag("off"); err != nil {
		t.Error(err)
	}
	if err := CheckFlag("cache:8080"); err == nil || !strings.Contains(err.Error(), "--remote-cache") {
		t.Errorf("CheckFlag(cache:8080): %v", err)
	}
}

func TestParseNetrc(t *testing.T) {
	data := "# a comment-like token is just a token\nmachine a login la password pa\n" +
		"machine b\n\tlogin lb\n\tpassword \"p b\\\\\"\n" +
		"macdef upload\nput x\nmachine evil login e password e\n\n" +
		"default login d password d\nmachine c login lc"
	got := parseNetrc([]byte(data))
	var s []string
	for _, m := range got {
		s = append(s, m.machine+"="+m.login+":"+m.password)
	}
	want := "a=la:pa b=lb:p b\\ c=lc:"
	if strings.Join(s, " ") != want {
		t.Errorf("parseNetrc = %q, want %q", strings.Join(s, " "), want)
	}
}
