package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/intelliauth/controlplane/internal/domain"
)

// mustJSON encodes values the store builds itself (maps of strings), which
// cannot fail to encode.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// storableJSON returns the JSON document raw with every string and key in
// it made domain.StorableText, for a jsonb column: jsonb refuses "\u0000"
// and an unpaired surrogate ("\ud800"). A document of valid UTF-8 without
// escapes is stored as it is; any other is decoded and encoded again
// (numbers kept as written).
func storableJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || (utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u`))) {
		return raw, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("decode JSON: data after the document")
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(storableValue(v)); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	// bun writes `\u0000` into the statement as `\\u0000`, its way of
	// keeping jsonb from a NUL, but it does so after an escaped backslash
	// too: the text \u0000 (a backslash, then "u0000") would reach
	// Postgres as a backslash and a NUL, and be refused. Such a backslash
	// is written \u005c instead, which bun leaves alone.
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return bytes.ReplaceAll(out, []byte(`\\u0000`), []byte(`\u005cu0000`)), nil
}

// storableValue is v, a decoded JSON value, with its strings and keys made
// storable. Two keys that differ only by a NUL become one (either value).
func storableValue(v any) any {
	switch v := v.(type) {
	case string:
		return domain.StorableText(v, 0)
	case []any:
		for i := range v {
			v[i] = storableValue(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[domain.StorableText(k, 0)] = storableValue(x)
		}
		return out
	}
	return v
}
