package store

import "encoding/json"

// mustJSON encodes values the store builds itself (maps of strings), which
// cannot fail to encode.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
