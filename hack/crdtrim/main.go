// Command crdtrim removes the field descriptions that controller-gen copies from the core Pod API into the
// TrainingJob CRD's spec.template. Those descriptions are the Kubernetes API reference (kubectl explain pod.spec
// shows them) and make up most of the CRD's size; without them the CRD stays small enough for client-side
// `kubectl apply`, whose last-applied annotation is limited to 256 KiB.
//
//	go run ./hack/crdtrim FILE...
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	for _, f := range os.Args[1:] {
		if err := trim(f); err != nil {
			fmt.Fprintf(os.Stderr, "crdtrim: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
}

func trim(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var crd map[string]any
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return err
	}
	versions, _ := dig(crd, "spec", "versions").([]any)
	if len(versions) == 0 {
		return fmt.Errorf("no spec.versions")
	}
	for _, v := range versions {
		tmpl, ok := dig(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", "template").(map[string]any)
		if !ok {
			return fmt.Errorf("no spec.template in the schema")
		}
		for _, child := range tmpl {
			dropDescriptions(child)
		}
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return err
	}
	return os.WriteFile(file, append([]byte("---\n"), out...), 0o644)
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// dropDescriptions deletes the "description" keyword of a schema and its sub-schemas. A property that is
// itself named "description" is kept, since the values of "properties" are walked as schemas.
func dropDescriptions(v any) {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "description")
		for k, child := range t {
			if k == "properties" {
				for _, p := range child.(map[string]any) {
					dropDescriptions(p)
				}
				continue
			}
			dropDescriptions(child)
		}
	case []any:
		for _, child := range t {
			dropDescriptions(child)
		}
	}
}
