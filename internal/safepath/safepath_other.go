//go:build !linux

package safepath

import "errors"

// Resolve is only implemented on Linux, where the operator runs.
func Resolve(root, p string) error {
	return errors.New("resolving dataset paths needs Linux")
}
