package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// tree writes files (relative path -> content) under a new folder in the given order, with fixed mtimes.
func tree(t testing.TB, order []string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	mtime := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, rel := range order {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[rel]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var sample = map[string]string{
	"a.csv":           "id,label\n1,0\n",
	"images/001.png":  "\x89PNG one",
	"images/002.png":  "\x89PNG two",
	"images/sub/x.md": "notes",
	"z/last.bin":      "zzz",
}

func compute(t *testing.T, root string, mode Mode) Result {
	t.Helper()
	r, err := Compute(root, mode)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSameContentSameDigestWhateverTheCreationOrder(t *testing.T) {
	forward := []string{"a.csv", "images/001.png", "images/002.png", "images/sub/x.md", "z/last.bin"}
	backward := []string{"z/last.bin", "images/sub/x.md", "images/002.png", "images/001.png", "a.csv"}
	for _, mode := range []Mode{Metadata, Content} {
		a := compute(t, tree(t, forward, sample), mode)
		b := compute(t, tree(t, backward, sample), mode)
		if a.Digest != b.Digest {
			t.Errorf("%s: digests differ by creation order: %s vs %s", mode, a.Digest, b.Digest)
		}
		var want int64
		for _, content := range sample {
			want += int64(len(content))
		}
		if a.Files != 5 || a.Bytes != want {
			t.Errorf("%s: files %d bytes %d", mode, a.Files, a.Bytes)
		}
	}
}

func TestChangesChangeTheDigest(t *testing.T) {
	order := []string{"a.csv", "images/001.png", "images/002.png", "images/sub/x.md", "z/last.bin"}
	root := tree(t, order, sample)
	meta, content := compute(t, root, Metadata), compute(t, root, Content)
	if meta.Digest == content.Digest {
		t.Fatal("the two modes should give different digests")
	}

	// One byte changed, same size, same mtime: Content sees it, Metadata by design does not.
	p := filepath.Join(root, "images/001.png")
	info, _ := os.Stat(p)
	if err := os.WriteFile(p, []byte("\x89PNG One"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := compute(t, root, Content).Digest; got == content.Digest {
		t.Error("Content digest did not change with a changed byte")
	}
	if got := compute(t, root, Metadata).Digest; got != meta.Digest {
		t.Error("Metadata digest changed although size and mtime did not")
	}

	// A new mtime: Metadata sees it.
	later := info.ModTime().Add(time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if got := compute(t, root, Metadata).Digest; got == meta.Digest {
		t.Error("Metadata digest did not change with a changed mtime")
	}

	// A renamed file changes both.
	root2 := tree(t, order, sample)
	if err := os.Rename(filepath.Join(root2, "a.csv"), filepath.Join(root2, "b.csv")); err != nil {
		t.Fatal(err)
	}
	if compute(t, root2, Metadata).Digest == meta.Digest || compute(t, root2, Content).Digest == content.Digest {
		t.Error("a rename did not change the digests")
	}
}

func TestSymlinksAreRecordedNotFollowed(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("not part of the dataset"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := tree(t, []string{"a.csv"}, sample)
	if err := os.Symlink(secret, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape-dir")); err != nil {
		t.Fatal(err)
	}
	before := compute(t, root, Content)
	if before.Files != 3 || before.Bytes != int64(len(sample["a.csv"])) {
		t.Fatalf("links must count as entries without their targets' bytes: files %d bytes %d", before.Files, before.Bytes)
	}
	// Changing what the link points at outside the dataset must not change the digest: it is never read.
	if err := os.WriteFile(secret, []byte("changed outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if after := compute(t, root, Content); after.Digest != before.Digest {
		t.Fatal("the digest followed a symlink out of the dataset")
	}
	// Re-pointing the link is a change of the dataset.
	if err := os.Remove(filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if after := compute(t, root, Content); after.Digest == before.Digest {
		t.Fatal("a re-pointed link did not change the digest")
	}
}

func TestNamesCannotForgeLines(t *testing.T) {
	a := compute(t, tree(t, []string{"x\nf \"y\" 1 2"}, map[string]string{"x\nf \"y\" 1 2": ""}), Metadata)
	b := compute(t, tree(t, []string{"x"}, map[string]string{"x": ""}), Metadata)
	if a.Digest == b.Digest {
		t.Fatal("a file name with a newline collided with another listing")
	}
}

func TestComputeRejects(t *testing.T) {
	if _, err := Compute(t.TempDir(), "Full"); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := Compute(filepath.Join(t.TempDir(), "missing"), Metadata); err == nil {
		t.Error("missing root accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(f, nil, 0o644)
	if _, err := Compute(f, Metadata); err == nil {
		t.Error("a file as root accepted")
	}
}

// BenchmarkCompute walks trees of 10,000 and 100,000 files (100 per folder) and reports files per second and
// the peak heap in use during the walk. The two sizes run side by side so that the peak can be compared: it stays
// flat because the walk holds one folder's entries at a time.
//
//	go test ./controllers/datasetmount/manifest -run '^$' -bench Compute -benchtime 3x
func BenchmarkCompute(b *testing.B) {
	for _, files := range []int{10_000, 100_000} {
		root := benchTree(b, files/100, 100)
		for _, mode := range []Mode{Metadata, Content} {
			b.Run(fmt.Sprintf("%s/%dfiles", mode, files), func(b *testing.B) {
				peak := watchHeap()
				b.ResetTimer()
				for range b.N {
					r, err := Compute(root, mode)
					if err != nil || r.Files != int64(files) {
						b.Fatalf("%+v %v", r, err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
				b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

func benchTree(b *testing.B, folders, perFolder int) string {
	b.Helper()
	root := b.TempDir()
	for d := range folders {
		dir := filepath.Join(root, fmt.Sprintf("shard-%04d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range perFolder {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("sample-%03d.bin", f)), []byte("0123456789abcdef"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root
}

// watchHeap samples the heap in use until the returned function is called, which returns the peak.
func watchHeap() func() uint64 {
	runtime.GC()
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak
	}
}
