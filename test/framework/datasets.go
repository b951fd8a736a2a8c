package framework

import (
	"fmt"
	"os"
	"path/filepath"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// DatasetFolder makes the dataset's folder on the operator's view of its filesystem (a folder of this machine
// that stands in for the parallel filesystem), so that the operator's path check finds a real folder.
func DatasetFolder(cfg *configv1.Configuration, dsm *aifv1.DatasetMount) error {
	for _, fs := range cfg.Filesystems {
		if fs.Name != dsm.Spec.Filesystem {
			continue
		}
		root := fs.OperatorMountPath
		if root == "" && fs.HostPath != nil {
			root = fs.HostPath.Root
		}
		return os.MkdirAll(filepath.Join(root, dsm.Spec.Path), 0o755)
	}
	return fmt.Errorf("filesystem %s is not configured", dsm.Spec.Filesystem)
}
