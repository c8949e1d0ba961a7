// Package domain holds the control plane's vocabulary: identifiers, error
// codes and the types every other package shares. It imports nothing of
// ours, so every other package can depend on it.
package domain
