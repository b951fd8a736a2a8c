package names

import (
	"strings"
	"testing"
)

func TestShort(t *testing.T) {
	if got := Short("run", 63); got != "run" {
		t.Errorf("a short name must stay as it is, got %q", got)
	}
	a, b := Short(strings.Repeat("x", 100), 63), Short(strings.Repeat("x", 99)+"y", 63)
	if len(a) != 63 || len(b) != 63 || a == b {
		t.Errorf("long names must be cut to the limit and stay distinct: %q %q", a, b)
	}
	if Short(strings.Repeat("x", 100), 63) != a {
		t.Error("names must be deterministic")
	}
}

func TestWithHash(t *testing.T) {
	// "a-b" + "c" and "a" + "b-c" join to the same base; the key keeps them apart.
	x, y := WithHash("dataset-a-b-c", "a-b/c", 253), WithHash("dataset-a-b-c", "a/b-c", 253)
	if x == y || !strings.HasPrefix(x, "dataset-a-b-c-") {
		t.Errorf("want distinct names with the base kept: %q %q", x, y)
	}
	if got := WithHash(strings.Repeat("n", 300), "k", 253); len(got) != 253 {
		t.Errorf("length %d, want 253", len(got))
	}
	if got := WithHash("dataset-"+strings.Repeat("-", 300), "k", 63); strings.Contains(got, "--") {
		t.Errorf("trailing dashes of the cut base must go: %q", got)
	}
}
