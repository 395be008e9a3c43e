package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-dev/kiln/manifests"
)

// CatalogName is the model catalogue's file name in a project folder.
const CatalogName = "models.catalog.yaml"

// CatalogVersion is the catalogue format this package reads.
const CatalogVersion = 1

// Catalog is a model catalogue: models kiln can pull by name. See the
// package documentation for the file format.
type Catalog struct {
	// From is the file or URL the catalogue was read from.
	From string
	// Models are the entries in file order.
	Models []CatalogEntry
}

// CatalogEntry is one model of a catalogue.
type CatalogEntry struct {
	// Name is the model's name; it becomes its folder name.
	Name string
	// Description is one line for humans.
	Description string
	// Kind is the architecture family (sd15, sd2, sdxl, lcm, turbo).
	Kind manifests.ModelKind
	// URL is the absolute http(s) base URL the files are fetched from:
	// each file's URL is URL + its path. It always ends with "/".
	URL string
	// Files lists the model's files. When empty, the list is read from
	// URL + "kiln-manifest.json" at pull time.
	Files []File
	// Pos is where the entry is defined ("models.catalog.yaml:12:5").
	Pos string
}

// catalogFile is the YAML layout of a catalogue.
type catalogFile struct {
	Version int                `yaml:"version"`
	Models  []catalogEntryYAML `yaml:"models"`
}

type catalogEntryYAML struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Kind        string `yaml:"kind"`
	URL         string `yaml:"url"`
	Files       []File `yaml:"files"`
}

// FindCatalog returns the project's catalogue path (<root>/models.catalog.yaml)
// and whether that file exists.
func FindCatalog(root string) (string, bool) {
	p := filepath.Join(root, CatalogName)
	st, err := os.Stat(p)
	return p, err == nil && st.Mode().IsRegular()
}

// LoadCatalog reads and checks the catalogue file at path.
func LoadCatalog(path string) (*Catalog, error) {
	data, err := readLimited(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("model catalogue %s does not exist; create it (see `kiln models pull --help` for the format) or pull a URL", path)
		}
		return nil, err
	}
	return ParseCatalog(data, path, nil)
}

// ParseCatalog decodes and checks a catalogue (YAML, or JSON, which is
// YAML too). from names it in messages; base, when the catalogue was
// fetched from a URL, resolves relative entry URLs.
func ParseCatalog(data []byte, from string, base *url.URL) (*Catalog, error) {
	var cf catalogFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		return nil, yamlError(from, err)
	}
	// A second pass over the node tree gives each entry its position.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(from, err)
	}
	entryPos := catalogPositions(&root)

	if cf.Version != CatalogVersion {
		if cf.Version == 0 {
			return nil, fmt.Errorf("%s: no \"version\"; add \"version: %d\" at the top", from, CatalogVersion)
		}
		return nil, fmt.Errorf("%s: catalogue version %d is not supported; this kiln reads version %d", from, cf.Version, CatalogVersion)
	}
	if len(cf.Models) == 0 {
		return nil, fmt.Errorf("%s: the catalogue lists no models; add entries under \"models:\"", from)
	}
	c := &Catalog{From: from}
	seen := map[string]string{}
	for i, e := range cf.Models {
		pos := from
		if i < len(entryPos) {
			pos = fmt.Sprintf("%s:%d:%d", from, entryPos[i].Line, entryPos[i].Column)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("%s: model entry has no name; add \"name:\" (letters, digits, \"_\", \".\" and \"-\")", pos)
		}
		if !validName(e.Name) {
			return nil, fmt.Errorf("%s: model name %q is not valid; use letters, digits, \"_\", \".\" and \"-\", starting with a letter or digit", pos, e.Name)
		}
		if prev, ok := seen[e.Name]; ok {
			return nil, fmt.Errorf("%s: model %q is already defined at %s; give each entry its own name", pos, e.Name, prev)
		}
		seen[e.Name] = pos
		kind := manifests.ModelKind(e.Kind)
		if kind != "" && !validKind(kind) {
			return nil, fmt.Errorf("%s: model %q: kind %q is not one of %s", pos, e.Name, e.Kind, strings.Join(kindNames(), ", "))
		}
		if e.URL == "" {
			return nil, fmt.Errorf("%s: model %q has no url; give the http(s) folder its files are fetched from", pos, e.Name)
		}
		u, err := baseURL(e.URL, base)
		if err != nil {
			return nil, fmt.Errorf("%s: model %q: %w", pos, e.Name, err)
		}
		if len(e.Files) > 0 {
			if err := checkFiles(e.Files); err != nil {
				return nil, fmt.Errorf("%s: model %q: %w", pos, e.Name, err)
			}
			sortFiles(e.Files)
		}
		c.Models = append(c.Models, CatalogEntry{
			Name: e.Name, Description: e.Description, Kind: kind,
			URL: u.String(), Files: e.Files, Pos: pos,
		})
	}
	return c, nil
}

// Lookup returns the entry called name, or an error listing the names the
// catalogue has.
func (c *Catalog) Lookup(name string) (*CatalogEntry, error) {
	for i := range c.Models {
		if c.Models[i].Name == name {
			return &c.Models[i], nil
		}
	}
	return nil, fmt.Errorf("model %q is not in the catalogue %s; it has: %s", name, c.From, strings.Join(c.Names(), ", "))
}

// Names returns the entries' names, sorted.
func (c *Catalog) Names() []string {
	names := make([]string, len(c.Models))
	for i, m := range c.Models {
		names[i] = m.Name
	}
	sort.Strings(names)
	return names
}

// catalogPositions returns the node of each element of the top-level
// "models" sequence.
func catalogPositions(root *yaml.Node) []*yaml.Node {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "models" && doc.Content[i+1].Kind == yaml.SequenceNode {
			return doc.Content[i+1].Content
		}
	}
	return nil
}

// yamlError turns yaml.v3's "line N: msg" errors into "from:N: msg".
func yamlError(from string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			m = unknownField.ReplaceAllString(m, `unknown field "$1"`)
			m = wrongType.ReplaceAllStringFunc(m, func(s string) string {
				sub := wrongType.FindStringSubmatch(s)
				return fmt.Sprintf("%q is not %s", sub[1], yamlTypeWords(sub[2]))
			})
			msgs[i] = from + ":" + strings.TrimPrefix(m, "line ")
		}
		return fmt.Errorf("invalid model catalogue: %s (a catalogue has \"version\" and \"models\"; each model has name, description, kind, url and files)", strings.Join(msgs, "; "))
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		return fmt.Errorf("%s:%s; fix the YAML syntax", from, rest)
	}
	return fmt.Errorf("%s: invalid model catalogue: %s", from, msg)
}

// yaml.v3 names Go types in its messages; say it in the catalogue's terms.
var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	wrongType    = regexp.MustCompile("cannot unmarshal !!\\w+ `([^`]*)` into (\\S+)")
)

// yamlTypeWords names a Go type for catalogue authors.
func yamlTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "a mapping"
}

// baseURL parses an entry's or the command line's base URL: absolute
// http(s) (or relative to base, for remote catalogues), without a
// fragment, always ending with "/".
func baseURL(raw string, base *url.URL) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q is not a valid URL: %v", raw, err)
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q is not an http or https URL; give the absolute URL of the folder holding the model's files", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", raw)
	}
	u.Fragment = ""
	u.RawFragment = ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// fileURL is base + the file's slash-separated path, each element escaped.
func fileURL(base *url.URL, rel string) *url.URL {
	return base.JoinPath(strings.Split(rel, "/")...)
}
