// Package gomod finds the folder of a Go module that a go.mod requires, downloading it into the module cache
// first when it is not there yet. The Kueue manager's build, the local factory, the test framework and the
// end-to-end suite all read Kueue's files (its main package, CRDs and webhook manifests) this way.
//
// `go list -m -f {{.Dir}}` is not enough: it prints an empty folder for a module that is required but not
// yet downloaded, which is the state of a fresh machine. `go mod download -json` downloads what it names and
// reports the folder it extracted.
package gomod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// download is the part of `go mod download -json` that Dir reads.
type download struct {
	Path    string
	Version string
	Dir     string
	Error   string
}

// Dir returns the folder of module path at the version that the go.mod in (or above) the folder dir requires,
// downloading the module if the module cache lacks it. The environment is the process's own, so GOMODCACHE,
// GOPROXY and GOFLAGS apply as they do to `go build`.
func Dir(ctx context.Context, dir, path string) (string, error) {
	if strings.ContainsAny(path, "@ \t\n") || path == "" {
		return "", fmt.Errorf("module path %q: want a bare module path without a version", path)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", path)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	runErr := cmd.Run()
	var d download
	// go mod download prints the JSON also when the download failed, with the reason in Error.
	if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
		if runErr != nil {
			return "", fmt.Errorf("go mod download %s in %s: %w: %s", path, dir, runErr, strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("go mod download %s in %s: reading its output: %w", path, dir, err)
	}
	switch {
	case d.Error != "":
		return "", fmt.Errorf("go mod download %s in %s: %s", path, dir, d.Error)
	case runErr != nil:
		return "", fmt.Errorf("go mod download %s in %s: %w: %s", path, dir, runErr, strings.TrimSpace(stderr.String()))
	case d.Dir == "":
		return "", fmt.Errorf("go mod download %s in %s reported no folder", path, dir)
	}
	if fi, err := os.Stat(d.Dir); err != nil || !fi.IsDir() {
		return "", errors.Join(fmt.Errorf("module %s@%s: folder %s is missing", d.Path, d.Version, d.Dir), err)
	}
	return d.Dir, nil
}
