package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount/manifest"
)

// verifyDataset is the verify-dataset subcommand, run by a DatasetMount's verification Job: it walks the
// dataset and writes the manifest as JSON to stdout and to the container's termination log, where the operator
// reads it.
func verifyDataset(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify-dataset", flag.ContinueOnError)
	root := fs.String("root", "/dataset", "Folder of the dataset, mounted read-only.")
	mode := fs.String("mode", string(manifest.Metadata), "Metadata or Content.")
	termLog := fs.String("termination-log", "/dev/termination-log", "File the result is also written to; empty for none.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := manifest.Compute(*root, manifest.Mode(*mode))
	if err != nil {
		writeTerminationLog(*termLog, err.Error())
		return err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, string(out)); err != nil {
		return err
	}
	writeTerminationLog(*termLog, string(out))
	return nil
}

// writeTerminationLog writes msg where the kubelet picks it up; outside a pod there may be no such file.
func writeTerminationLog(path, msg string) {
	if path != "" {
		_ = os.WriteFile(path, []byte(msg), 0o644) //nolint:gosec // the kubelet's termination log is world-readable
	}
}
