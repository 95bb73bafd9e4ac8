package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The contracts that code comments cite live in the repository
// (docs/design.md). These tests keep every cite pointing at something
// that is there: a design document that exists, spelled as it is, and a
// heading of it when the cite names one.

// designRef finds a cite of a design document in any file: a path whose
// file name ends in "design" with the .md extension, in any case, with an
// optional #anchor.
var designRef = regexp.MustCompile(`(?i)[\w./-]*design\.md(#[\w-]+)?`)

// mdLink finds, in Markdown, a link to a Markdown file, with an optional
// #anchor.
var mdLink = regexp.MustCompile(`\]\(([^()\s]+\.md)(#[^()\s]*)?\)`)

// docRefExts are the files whose text is searched for cites.
var docRefExts = []string{".go", ".md", ".sh", ".js"}

// docRef is one cite: where it is, the path it names and its anchor.
type docRef struct {
	file     string // relative to the root, with slashes
	line     int
	path     string
	anchor   string // without '#'; "" for none
	markdown bool   // a Markdown link: its path is relative to file's folder only
}

func (r docRef) String() string {
	s := fmt.Sprintf("%s:%d: %s", r.file, r.line, r.path)
	if r.anchor != "" {
		s += "#" + r.anchor
	}
	return s
}

// findDocRefs returns the cites in the files under root. Folders named
// testdata (the go command's convention: fixtures, not the project's own
// text) and hidden ones are skipped, as is node_modules.
func findDocRefs(root string) ([]docRef, error) {
	var refs []docRef
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !slices.Contains(docRefExts, filepath.Ext(name)) {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			for _, m := range designRef.FindAllStringSubmatch(line, -1) {
				p, _, _ := strings.Cut(m[0], "#")
				if strings.HasPrefix(p, "//") {
					continue // a URL: not a file of this tree
				}
				refs = append(refs, docRef{file: filepath.ToSlash(rel), line: n, path: p, anchor: strings.TrimPrefix(m[1], "#")})
			}
			if filepath.Ext(name) != ".md" {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				if strings.Contains(m[1], "://") || designRef.MatchString(m[1]) {
					continue // a URL, or a design cite found above
				}
				refs = append(refs, docRef{file: filepath.ToSlash(rel), line: n, path: m[1], anchor: strings.TrimPrefix(m[2], "#"), markdown: true})
			}
		}
		return sc.Err()
	})
	return refs, err
}

// checkDocRef returns what is wrong with ref under root, or "". A path
// may be relative to the root (docs/design.md, from any file) or to the
// citing file's folder (a Markdown link); it must stay inside root and
// match the names on disk exactly, case included.
func checkDocRef(root string, ref docRef) string {
	var bases []string
	if !ref.markdown {
		bases = append(bases, ".")
	}
	bases = append(bases, filepath.Dir(filepath.FromSlash(ref.file)))
	for _, base := range bases {
		rel := filepath.Clean(filepath.Join(base, filepath.FromSlash(ref.path)))
		if filepath.IsAbs(ref.path) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if !existsExact(root, rel) {
			continue
		}
		if ref.anchor == "" || filepath.Ext(rel) != ".md" {
			return ""
		}
		anchors, err := headingAnchors(filepath.Join(root, rel))
		if err != nil {
			return err.Error()
		}
		if !anchors[ref.anchor] {
			return fmt.Sprintf("%s has no heading #%s", filepath.ToSlash(rel), ref.anchor)
		}
		return ""
	}
	return "no such file in the repository"
}

// existsExact reports whether the file rel exists under root with exactly
// that spelling, even on a file system that ignores case.
func existsExact(root, rel string) bool {
	dir := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == part }) {
			return false
		}
		dir = filepath.Join(dir, part)
	}
	fi, err := os.Stat(dir)
	return err == nil && fi.Mode().IsRegular()
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown file: the heading's text in lower case, spaces made hyphens,
// punctuation other than '-' and '_' dropped, and "-1", "-2"... added to
// repeats. Lines inside ``` fences are not headings.
func headingAnchors(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if fenced || !ok || !strings.HasPrefix(line, "#") || len(line)-len(strings.TrimLeft(line, "#")) > 6 {
			continue
		}
		var slug strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				slug.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				slug.WriteRune(r)
			}
		}
		s := slug.String()
		if n := seen[s]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			anchors[s] = true
		}
		seen[s]++
	}
	return anchors, nil
}

// badDocRefs returns every cite under root that names nothing, as
// "FILE:LINE: PATH[#ANCHOR]: PROBLEM".
func badDocRefs(t *testing.T, root string) (bad []string, refs int) {
	t.Helper()
	found, err := findDocRefs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range found {
		if problem := checkDocRef(root, ref); problem != "" {
			bad = append(bad, ref.String()+": "+problem)
		}
	}
	return bad, len(found)
}

// TestDocRefs checks every cite of a design document, and every Markdown
// link to a Markdown file, in the repository.
func TestDocRefs(t *testing.T) {
	bad, n := badDocRefs(t, ".")
	for _, b := range bad {
		t.Errorf("%s (the contracts live in docs/design.md)", b)
	}
	if n == 0 {
		t.Error("no cite of docs/design.md found: the search is broken")
	}
}

// TestDocRefsFindBroken checks that the search tells a good cite from a
// broken one, on a small tree (testdata/docrefs): the broken ones are
// listed in testdata/docrefs.want.
func TestDocRefsFindBroken(t *testing.T) {
	bad, n := badDocRefs(t, filepath.Join("testdata", "docrefs"))
	wantText, err := os.ReadFile(filepath.Join("testdata", "docrefs.want"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(wantText)), "\n")
	slices.Sort(bad)
	slices.Sort(want)
	if !slices.Equal(bad, want) {
		t.Errorf("broken cites:\n%s\nwant:\n%s", strings.Join(bad, "\n"), strings.Join(want, "\n"))
	}
	// The good ones: three in README.md, two in cli/run.js, one link in
	// docs/design.md; the URL is not counted.
	if good := n - len(bad); good != 6 {
		t.Errorf("%d good cites, want 6", good)
	}
}
