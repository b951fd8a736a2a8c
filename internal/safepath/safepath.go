// Package safepath resolves a folder below a root one component at a time, never following a symbolic link,
// so that a dataset path names the folder it spells and nothing a tenant linked elsewhere.
package safepath

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Problem says what is wrong with one component of a path.
type Problem string

// The problems Resolve reports.
const (
	SymbolicLink Problem = "is a symbolic link"
	NotFolder    Problem = "is not a folder"
	Missing      Problem = "does not exist"
)

// Error names the first component of a path that cannot be crossed.
type Error struct {
	// Path is the path that was resolved; Component is its prefix up to the component at fault.
	Path, Component string
	Problem         Problem
}

func (e *Error) Error() string {
	if e.Component == e.Path {
		return fmt.Sprintf("%s %s", e.Path, e.Problem)
	}
	return fmt.Sprintf("%s: component %s %s", e.Path, e.Component, e.Problem)
}

// IsMissing reports whether err says that a component of the path does not exist.
func IsMissing(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Problem == Missing
}

// components splits a clean absolute path into its names; "/" has none.
func components(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// IsClean reports whether p is absolute and already in the form path.Clean gives it, with no
// control characters and no percent signs (no encoded traversal). The operator
// configuration and the DatasetMount webhook both hold paths to it.
func IsClean(p string) bool {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '%' {
			return false
		}
	}
	return true
}
