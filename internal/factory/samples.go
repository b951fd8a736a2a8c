package factory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

// WriteSampleData writes the small real datasets that the samples mount, under the simulated Lustre folders:
// a chest X-ray set (images and labels) and a year of grid load readings, and an empty checkpoint folder. The
// content is the same on every run, so the verified digests are too.
func (f *Factory) WriteSampleData() error {
	data := filepath.Join(f.Dir, "data")
	xray := filepath.Join(data, FilesystemDatasets, "medai", "chest-xray", "v3")
	files := map[string][]byte{filepath.Join(xray, "labels.csv"): []byte("image,finding\n")}
	rng := rand.New(rand.NewPCG(3, 2025)) //nolint:gosec // fixed sample content, not secrets
	labels := []string{"normal", "pneumonia", "effusion", "nodule"}
	for i := 1; i <= 24; i++ {
		name := fmt.Sprintf("img-%04d.png", i)
		img := make([]byte, 2048+rng.IntN(2048))
		for j := range img {
			img[j] = byte(rng.UintN(256))
		}
		files[filepath.Join(xray, "images", name)] = img
		files[filepath.Join(xray, "labels.csv")] = append(files[filepath.Join(xray, "labels.csv")], name+","+labels[rng.IntN(len(labels))]+"\n"...)
	}
	load := filepath.Join(data, FilesystemDatasets, "gridlab", "load", "2025")
	for m := 1; m <= 12; m++ {
		csv := []byte("hour,megawatts\n")
		for h := range 24 {
			csv = fmt.Appendf(csv, "%02d,%d\n", h, 30000+rng.IntN(20000))
		}
		files[filepath.Join(load, fmt.Sprintf("2025-%02d.csv", m))] = csv
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil { //nolint:gosec // a simulated shared filesystem
			return err
		}
		if err := os.WriteFile(name, files[name], 0o644); err != nil { //nolint:gosec // datasets are world-readable on the simulated filesystem
			return err
		}
	}
	return os.MkdirAll(filepath.Join(data, FilesystemScratch, "medai", "checkpoints"), 0o777) //nolint:gosec // workers run as any user
}

// ApplySamples applies the YAML files of dir in name order.
func (f *Factory) ApplySamples(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, file := range files {
		if err := f.applyFile(ctx, file); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(file), err)
		}
	}
	return nil
}
