// Package datasets holds the rules about a DatasetMount that several controllers and webhooks apply: where its
// folder is on the filesystem, whether its path is safe, how pods mount it, and whether the tenant may use it.
package datasets

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/internal/safepath"
)

// Filesystem is the configured filesystem of that name, nil if there is none.
func Filesystem(cfg *configv1.Configuration, name string) *configv1.Filesystem {
	for i := range cfg.Filesystems {
		if cfg.Filesystems[i].Name == name {
			return &cfg.Filesystems[i]
		}
	}
	return nil
}

// CheckPath resolves the dataset's path on the operator's own mount of its filesystem without following
// symbolic links (see safepath.Resolve). It returns nil for a filesystem that is not configured; validation
// reports that.
func CheckPath(cfg *configv1.Configuration, dsm *aifv1.DatasetMount) error {
	fs := Filesystem(cfg, dsm.Spec.Filesystem)
	if fs == nil {
		return nil
	}
	return safepath.Resolve(fs.OperatorMountPath, dsm.Spec.Path)
}

// PathUnsafe reports whether a CheckPath error says that the path crosses a symbolic link or a file, as
// opposed to a path that does not exist (yet) or cannot be reached.
func PathUnsafe(err error) bool {
	return IsPathError(err) && !safepath.IsMissing(err)
}

// IsPathError reports whether err comes from resolving the path (see safepath), as opposed to reaching it.
func IsPathError(err error) bool {
	var e *safepath.Error
	return errors.As(err, &e)
}

// SubPath is the folder inside the volume that pods mount: the dataset path for filesystems mounted whole,
// nothing otherwise.
func SubPath(dsm *aifv1.DatasetMount, fs *configv1.Filesystem) string {
	if fs.CSI != nil && fs.CSI.WholeFilesystem {
		return strings.TrimPrefix(dsm.Spec.Path, "/")
	}
	return ""
}

// FSGroupConflict says why a pod with fsGroup may not mount the DatasetMount (its claim is a whole filesystem,
// whose group the kubelet would change); empty when it may.
func FSGroupConflict(d *aifv1.DatasetMount, cfg *configv1.Configuration) string {
	if fs := Filesystem(cfg, d.Spec.Filesystem); fs != nil && SubPath(d, fs) != "" {
		return fmt.Sprintf("DatasetMount %s is on filesystem %s, which is mounted whole; pods that mount it may not set fsGroup (the kubelet would change the group of the whole filesystem)",
			d.Name, d.Spec.Filesystem)
	}
	return ""
}

// revokedReasons are the Ready reasons of a DatasetMount that the tenant may not use: it gets no volume, and
// loses the one it had once no running run uses it.
var revokedReasons = []string{aifv1.ReasonNoTenant, aifv1.ReasonFilesystemUnknown, aifv1.ReasonNotPermitted,
	aifv1.ReasonTenantChanged, aifv1.ReasonPathUnsafe}

// Revoked reports whether a DatasetMount's status says the tenant may not use it.
func Revoked(dsm *aifv1.DatasetMount) bool {
	c := apimeta.FindStatusCondition(dsm.Status.Conditions, aifv1.ConditionReady)
	return c != nil && RevokedReason(c.Reason)
}

// RevokedReason reports whether a Ready reason says the tenant may not use the DatasetMount.
func RevokedReason(reason string) bool {
	return slices.Contains(revokedReasons, reason)
}
