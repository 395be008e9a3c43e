package pipeline

import (
	"strings"
	"testing"
)

// TestSelectGlobs checks --only patterns: the include: rules ("*" within a
// segment, "**" across), plain names as before, and the nearest ids when a
// pattern matches nothing.
func TestSelectGlobs(t *testing.T) {
	d, err := Graph([]Stage{
		st("ui/button:gen"), st("ui/icons/coin:gen"), st("ui/icons/gem:gen"),
		st("hero/walk:gen"), st("hero/walk:sheet", "hero/walk:gen"), st("hero/walk-2:gen"),
		st("atlas/ui:pack", "ui/button:gen", "ui/icons/coin:gen"),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkSelect(t, d, []selectCase{
		{[]string{"ui/*"}, "ui/button:gen", ""},
		{[]string{"ui/**"}, "ui/button:gen ui/icons/coin:gen ui/icons/gem:gen", ""},
		{[]string{"ui/icons/*"}, "ui/icons/coin:gen ui/icons/gem:gen", ""},
		{[]string{"hero/walk*"}, "hero/walk:gen hero/walk:sheet hero/walk-2:gen", ""},
		{[]string{"hero/walk-?"}, "hero/walk-2:gen", ""},
		{[]string{"atlas/[u]i"}, "ui/button:gen ui/icons/coin:gen atlas/ui:pack", ""},
		{[]string{"**/gem", "hero/walk"}, "ui/icons/gem:gen hero/walk:gen hero/walk:sheet", ""},
		{[]string{"hero/wlak*"}, "", `pattern "hero/wlak*" matches no asset ("*" matches within one id segment, "**" across segments); the nearest ids are "hero/walk", "hero/walk-2", "atlas/ui"`},
		{[]string{"ui/*/coins"}, "", `pattern "ui/*/coins" matches no asset ("*" matches within one id segment, "**" across segments); the nearest ids are "ui/icons/coin", "ui/icons/gem", "ui/button"`},
		{[]string{"ui/butn"}, "", `no asset or stage is called "ui/butn"; did you mean "ui/button"?`},
	})
}

// selectCase is one Select call: the --only names, and the stages it
// should select in graph order, or the error it should give.
type selectCase struct {
	only    []string
	want    string
	wantErr string
}

// checkSelect runs each case against d.
func checkSelect(t *testing.T, d *DAG, tests []selectCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(strings.Join(tc.only, ","), func(t *testing.T) {
			mask, err := d.Select(tc.only)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for i, s := range d.Stages() {
				if mask[i] {
					ids = append(ids, s.ID)
				}
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("selected %s, want %s", got, tc.want)
			}
		})
	}
}
