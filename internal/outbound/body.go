package outbound

import (
	"io"
)

// What ReadBody reads of a response: the first MaxKeptBody bytes are kept
// (for an error message), up to MaxDrainedBody more are read and
// discarded so that a short body leaves its connection reusable, and
// anything beyond is left unread: closing the body then closes the
// connection.
const (
	MaxKeptBody    = 4 << 10
	MaxDrainedBody = 64 << 10
)

// ReadBody reads a response body within those bounds and closes it, so
// that a huge body cannot hold a worker; a slow one is cut by the client's
// Timeout, whose error ReadBody returns with what it had kept.
func ReadBody(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	kept, err := io.ReadAll(io.LimitReader(body, MaxKeptBody))
	if err != nil || len(kept) < MaxKeptBody {
		return kept, err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(body, MaxDrainedBody))
	return kept, err
}
