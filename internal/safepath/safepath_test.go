package safepath

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	other := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "medai", "xray", "v3"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "gridlab", "secret"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "medai", "notes.txt"), nil, 0o644))
	must(t, os.Symlink("../gridlab/secret", filepath.Join(root, "medai", "stolen")))
	must(t, os.Symlink("/", filepath.Join(root, "medai", "host")))
	must(t, os.Symlink(other, filepath.Join(root, "medai", "outside")))
	must(t, os.Symlink("xray", filepath.Join(root, "medai", "alias")))
	must(t, os.Symlink("notes.txt", filepath.Join(root, "medai", "note-link")))
	must(t, os.Symlink(filepath.Join(root, "gridlab"), filepath.Join(root, "linked-tenant")))

	cases := []struct {
		path, component string
		problem         Problem
	}{
		{"/medai/xray/v3", "", ""},
		{"/", "", ""},
		{"/medai/stolen", "/medai/stolen", SymbolicLink},
		{"/medai/host", "/medai/host", SymbolicLink},
		{"/medai/outside", "/medai/outside", SymbolicLink},
		{"/medai/alias/v3", "/medai/alias", SymbolicLink},
		{"/medai/note-link", "/medai/note-link", SymbolicLink},
		{"/linked-tenant/secret", "/linked-tenant", SymbolicLink},
		{"/medai/notes.txt", "/medai/notes.txt", NotFolder},
		{"/medai/notes.txt/x", "/medai/notes.txt", NotFolder},
		{"/medai/xray/v4", "/medai/xray/v4", Missing},
		{"/nobody/x", "/nobody", Missing},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			err := Resolve(root, tc.path)
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("Resolve(%s) = %v, want nil", tc.path, err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Resolve(%s) = %v, want a *Error", tc.path, err)
			}
			if e.Component != tc.component || e.Problem != tc.problem {
				t.Fatalf("Resolve(%s) = component %s %s, want %s %s", tc.path, e.Component, e.Problem, tc.component, tc.problem)
			}
			if IsMissing(err) != (tc.problem == Missing) {
				t.Fatalf("IsMissing(%v) = %v", err, IsMissing(err))
			}
		})
	}
}

func TestResolveNeedsTheRoot(t *testing.T) {
	if err := Resolve(filepath.Join(t.TempDir(), "absent"), "/x"); err == nil || IsMissing(err) {
		t.Fatalf("Resolve below a missing root = %v, want an error that is not about the path", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestIsClean(t *testing.T) {
	for p, want := range map[string]bool{
		"/":             true,
		"/lustre/a":     true,
		"lustre":        false,
		"/lustre/":      false,
		"//lustre":      false,
		"/lustre/./a":   false,
		"/lustre/../a":  false,
		"/lustre/%2e":   false,
		"/lustre/a\x00": false,
		"/lustre/a\nb":  false,
		"":              false,
	} {
		if got := IsClean(p); got != want {
			t.Errorf("IsClean(%q) = %v, want %v", p, got, want)
		}
	}
}
