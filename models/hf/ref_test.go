package hf

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr string // substring of the error; "" for success
	}{
		{in: "hf:stabilityai/sd-turbo", want: Ref{Repo: "stabilityai/sd-turbo", Revision: "main"}},
		{in: "hf:stabilityai/sd-turbo@v1.0", want: Ref{Repo: "stabilityai/sd-turbo", Revision: "v1.0"}},
		{in: "hf:runwayml/stable-diffusion-v1-5@onnx", want: Ref{Repo: "runwayml/stable-diffusion-v1-5", Revision: "onnx"}},
		{in: "hf:org/repo/onnx", want: Ref{Repo: "org/repo", Subfolder: "onnx", Revision: "main"}},
		{in: "hf:org/repo/onnx/fp16/", want: Ref{Repo: "org/repo", Subfolder: "onnx/fp16", Revision: "main"}},
		{in: "hf:org/repo/onnx@refs/pr/3", want: Ref{Repo: "org/repo", Subfolder: "onnx", Revision: "refs/pr/3"}},
		{in: "hf:Org_1/Re.po-2@0123456789abcdef0123456789abcdef01234567", want: Ref{Repo: "Org_1/Re.po-2", Revision: "0123456789abcdef0123456789abcdef01234567"}},

		{in: "stabilityai/sd-turbo", wantErr: "is not a Hugging Face reference"},
		{in: "hf://stabilityai/sd-turbo", wantErr: `no "//"`},
		{in: "hf:", wantErr: "no repository given"},
		{in: "hf:sd-turbo", wantErr: "must be ORG/REPO"},
		{in: "hf:org/", wantErr: "must be ORG/REPO"},
		{in: "hf:/repo", wantErr: "owner is empty"},
		{in: "hf:datasets/org/data", wantErr: "dataset repositories hold no models"},
		{in: "hf:org/re po", wantErr: "space"},
		{in: "hf:org/re$po", wantErr: `may contain only letters`},
		{in: "hf:-org/repo", wantErr: "may not start or end"},
		{in: "hf:org/repo.", wantErr: "may not start or end"},
		{in: "hf:org/re--po", wantErr: `may not contain "--"`},
		{in: "hf:org/repo.git", wantErr: `".git"`},
		{in: "hf:org/" + strings.Repeat("a", 97), wantErr: "longer than 96"},
		{in: "hf:org/repo/../x", wantErr: `may not contain ".."`},
		{in: "hf:org/repo//x", wantErr: "empty element"},
		{in: "hf:org/repo@", wantErr: "revision after \"@\" is empty"},
		{in: "hf:org/repo@a@b", wantErr: `more than one "@"`},
		{in: "hf:org/repo@a..b", wantErr: `may not contain ".."`},
		{in: "hf:org/repo@/main", wantErr: "empty path element"},
		{in: "hf:org/repo@-x", wantErr: `may not start with "-"`},
		{in: `hf:org\repo`, wantErr: "backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseRef(%q) = %+v, want an error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "hf:ORG/REPO") {
					t.Fatalf("ParseRef(%q) error %q, want it to contain %q and the expected form", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			// String spells it back so that it parses the same.
			again, err := ParseRef(got.String())
			if err != nil || again != got {
				t.Fatalf("ParseRef(%q.String() = %q) = %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestRefString(t *testing.T) {
	tests := []struct {
		ref  Ref
		want string
	}{
		{Ref{Repo: "a/b", Revision: "main"}, "hf:a/b"},
		{Ref{Repo: "a/b"}, "hf:a/b"},
		{Ref{Repo: "a/b", Subfolder: "onnx", Revision: "v2"}, "hf:a/b/onnx@v2"},
	}
	for _, tt := range tests {
		if got := tt.ref.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.ref, got, tt.want)
		}
	}
	if !IsRef("hf:a/b") || IsRef("https://huggingface.co/a/b") {
		t.Error("IsRef does not tell hf: references from URLs")
	}
}
