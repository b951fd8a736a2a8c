package podpolicy

import (
	"slices"
	"testing"
)

// The keys the namespace watch compares are exactly the labels the operator sets.
func TestNamespaceLabelKeys(t *testing.T) {
	var keys []string
	for k := range NamespaceLabels("medai", "restricted") {
		keys = append(keys, k)
	}
	if !slices.Equal(slices.Sorted(slices.Values(keys)), slices.Sorted(slices.Values(NamespaceLabelKeys))) {
		t.Fatalf("NamespaceLabelKeys %v, labels %v", NamespaceLabelKeys, keys)
	}
}
