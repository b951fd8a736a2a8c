package safepath

import (
	"errors"
	"fmt"
	"path"

	"golang.org/x/sys/unix"
)

// Resolve checks that the clean absolute path p names a folder below root, crossing folders only: each
// component is opened relative to the folder before it with O_NOFOLLOW, so a symbolic link anywhere on the way
// (or a file where a folder should be) stops the walk and is named. root itself is trusted (it is the
// operator's own mount of the filesystem) and may be reached through links.
func Resolve(root, p string) error {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the filesystem root %s: %w", root, err)
	}
	walked := ""
	for _, name := range components(p) {
		walked = path.Join("/", walked, name)
		next, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			problem := classify(dir, name, err)
			_ = unix.Close(dir)
			if problem == "" {
				return fmt.Errorf("opening %s below %s: %w", walked, root, err)
			}
			return &Error{Path: p, Component: walked, Problem: problem}
		}
		_ = unix.Close(dir)
		dir = next
	}
	return unix.Close(dir)
}

// classify turns the error of opening name in dir into a Problem, or "" for errors that are not about the
// path (permissions, I/O).
func classify(dir int, name string, err error) Problem {
	switch {
	case errors.Is(err, unix.ENOENT):
		return Missing
	case errors.Is(err, unix.ELOOP):
		return SymbolicLink
	case errors.Is(err, unix.ENOTDIR):
		var st unix.Stat_t
		if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return SymbolicLink // O_PATH|O_NOFOLLOW on a link to a non-folder reports ENOTDIR
		}
		return NotFolder
	}
	return ""
}
