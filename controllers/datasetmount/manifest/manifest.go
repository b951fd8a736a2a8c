// Package manifest computes the fingerprint of a dataset: a sha256 over a canonical listing of its tree.
//
// The listing walks the tree depth first, the entries of each folder in byte order of their names, and writes
// one line per entry:
//
//	d <path>                      a folder (the root itself is not listed)
//	f <path> <size> <mtime-ns>    a regular file, Metadata mode
//	f <path> <size> <sha256>      a regular file, Content mode
//	l <path> <target>             a symbolic link, never followed
//	o <path> <mode>               anything else (device, socket, pipe)
//
// Paths are relative to the root, with "/" separators, and quoted with strconv.Quote so that no file name can
// forge a line. The walk holds one folder's entries at a time, so memory does not grow with the number of files.
package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"time"
)

// Mode says what a file contributes to the digest.
type Mode string

const (
	// Metadata uses each file's size and modification time.
	Metadata Mode = "Metadata"
	// Content uses each file's size and the sha256 of its bytes.
	Content Mode = "Content"
)

// Result is the fingerprint of a dataset.
type Result struct {
	Digest     string    `json:"digest"`
	Files      int64     `json:"files"`
	Bytes      int64     `json:"bytes"`
	Mode       Mode      `json:"mode"`
	VerifiedAt time.Time `json:"verifiedAt"`
}

// Compute walks root and returns its fingerprint.
func Compute(root string, mode Mode) (Result, error) {
	if mode != Metadata && mode != Content {
		return Result{}, fmt.Errorf("unknown verification mode %q", mode)
	}
	info, err := os.Lstat(root)
	if err != nil {
		return Result{}, fmt.Errorf("dataset root: %w", err)
	}
	if !info.IsDir() {
		return Result{}, fmt.Errorf("dataset root %s is not a folder", root)
	}
	// os.Root refuses to resolve any path, symlinks included, to a place outside the dataset.
	r, err := os.OpenRoot(root)
	if err != nil {
		return Result{}, fmt.Errorf("dataset root: %w", err)
	}
	defer func() { _ = r.Close() }()
	w := &walker{fsys: r.FS(), mode: mode, sum: sha256.New(), buf: make([]byte, 1<<20)}
	if err := w.dir("."); err != nil {
		return Result{}, err
	}
	return Result{
		Digest: "sha256:" + hex.EncodeToString(w.sum.Sum(nil)),
		Files:  w.files, Bytes: w.bytes, Mode: mode, VerifiedAt: time.Now().UTC(),
	}, nil
}

type walker struct {
	fsys         fs.FS
	mode         Mode
	sum          hash.Hash
	buf          []byte
	files, bytes int64
}

func (w *walker) dir(dir string) error {
	entries, err := fs.ReadDir(w.fsys, dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if err := w.entry(p, e); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) entry(p string, e fs.DirEntry) error {
	q := strconv.Quote(p)
	switch t := e.Type(); {
	case t.IsDir():
		w.line("d %s\n", q)
		return w.dir(p)
	case t&fs.ModeSymlink != 0:
		target, err := fs.ReadLink(w.fsys, p)
		if err != nil {
			return fmt.Errorf("reading link %s: %w", p, err)
		}
		w.files++
		w.line("l %s %s\n", q, strconv.Quote(target))
		return nil
	case t.IsRegular():
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		w.files++
		w.bytes += info.Size()
		if w.mode == Metadata {
			w.line("f %s %d %d\n", q, info.Size(), info.ModTime().UnixNano())
			return nil
		}
		digest, err := w.content(p)
		if err != nil {
			return err
		}
		w.line("f %s %d %s\n", q, info.Size(), digest)
		return nil
	default:
		w.files++
		w.line("o %s %s\n", q, t.String())
		return nil
	}
}

// line adds one line to the listing; writes to a hash never fail.
func (w *walker) line(format string, args ...any) {
	_, _ = fmt.Fprintf(w.sum, format, args...)
}

func (w *walker) content(p string) (string, error) {
	f, err := w.fsys.Open(p)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", p, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, w.buf); err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
