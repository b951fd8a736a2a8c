// Package names makes the deterministic names of the objects the operator creates, within Kubernetes' length
// limits and without collisions.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// hashLen is the length of the hash suffix, without its dash.
const hashLen = 10

// Hash is a short, stable hash of key.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// WithHash returns base, cut so that the result fits limit, followed by "-" and the hash of key. Use it where
// different keys could otherwise give the same base.
func WithHash(base, key string, limit int) string {
	keep := limit - hashLen - 1
	if len(base) > keep {
		base = strings.TrimRight(base[:keep], "-.")
	}
	return base + "-" + Hash(key)
}

// Short returns s when it fits limit, and otherwise s cut with the hash of the whole of s appended, so that
// long names stay distinct.
func Short(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return WithHash(s, s, limit)
}
