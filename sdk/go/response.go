package intelliauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"
)

// APIError is an answer of the API that is not a success: its status, and
// the error the body names (code, message, the invalid fields of a 400).
type APIError struct {
	StatusCode int
	// Code is the error's code (BAD_REQUEST, NOT_FOUND, CONFLICT,
	// REAUTHENTICATION_REQUIRED, RATE_LIMITED, …); empty when the body was
	// not the API's error (a proxy's answer).
	Code    string
	Message string
	// FieldErrors are the invalid fields of a BAD_REQUEST, all at once
	// (FieldError is the contract's: a field and why it is invalid).
	FieldErrors []FieldError
	// RequestID is the request's X-Request-ID, which the API's logs and
	// audit events carry.
	RequestID string
	// RetryAfter is the answer's Retry-After (429, 503); 0 without one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "intelliauth: %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	for i, f := range e.FieldErrors {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Message)
		if i == len(e.FieldErrors)-1 {
			b.WriteString(")")
		}
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// maxBody bounds what is read of an answer (the API's lists are far
// smaller; an export is NDJSON, which these helpers do not read).
const maxBody = 64 << 20

// Data decodes a raw operation call's answer: the envelope's data on a
// 2xx, an *APIError otherwise (err when the call got no answer). It closes
// the body.
//
//	t, err := intelliauth.Data[intelliauth.Tenant](c.GetTenant(ctx, orgID, tenantID))
func Data[T any](resp *http.Response, err error) (T, error) {
	var env struct {
		Data T `json:"data"`
	}
	err = decode(resp, err, &env)
	return env.Data, err
}

// Page is one page of a list: its items, the cursor of the next page (""
// on the last page) and whether there is a next page.
type Page[T any] struct {
	Items   []T
	Cursor  string
	HasMore bool
}

// List decodes a raw list operation call's answer (as Data does) into a
// page.
func List[T any](resp *http.Response, err error) (Page[T], error) {
	var env struct {
		Data []T `json:"data"`
		Meta struct {
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		} `json:"meta"`
	}
	if err := decode(resp, err, &env); err != nil {
		return Page[T]{}, err
	}
	return Page[T]{Items: env.Data, Cursor: env.Meta.Cursor, HasMore: env.Meta.HasMore}, nil
}

// All iterates every item of a cursor-paged list, fetching pages as it
// goes: fetch gets "" for the first page and then each page's cursor (pass
// it on with [Cursor]). An error ends the iteration, with a zero item.
//
//	for t, err := range intelliauth.All[intelliauth.Tenant](ctx, func(ctx context.Context, cursor string) (*http.Response, error) {
//		return c.ListTenants(ctx, orgID, &intelliauth.ListTenantsParams{Cursor: intelliauth.Cursor(cursor)})
//	}) { … }
func All[T any](ctx context.Context, fetch func(ctx context.Context, cursor string) (*http.Response, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		for {
			page, err := List[T](fetch(ctx, cursor))
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Items {
				if !yield(item, nil) {
					return
				}
			}
			if !page.HasMore || page.Cursor == "" || page.Cursor == cursor {
				return
			}
			cursor = page.Cursor
		}
	}
}

// Cursor is the cursor parameter of a list operation for a page's cursor:
// nil for "", the first page.
func Cursor(cursor string) *string {
	if cursor == "" {
		return nil
	}
	return &cursor
}

// decode reads a raw call's answer into v on a 2xx, and answers an
// *APIError otherwise.
func decode(resp *http.Response, err error, v any) error {
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return err
	}
	defer resp.Body.Close()
	what := "the request"
	if r := resp.Request; r != nil {
		what = r.Method + " " + r.URL.Path
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("intelliauth: reading the answer of %s: %w", what, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newAPIError(resp, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("intelliauth: decoding the answer of %s: %w", what, err)
	}
	return nil
}

// AsAPIError returns the *APIError of an answer that is not a success, or
// nil for a 2xx: for the answers of the …WithResponse methods, whose
// HTTPResponse and Body it takes.
func AsAPIError(resp *http.Response, body []byte) *APIError {
	if resp == nil || (resp.StatusCode >= 200 && resp.StatusCode <= 299) {
		return nil
	}
	return newAPIError(resp, body)
}

func newAPIError(resp *http.Response, body []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-ID")}
	if ra, ok := retryAfter(resp.Header, time.Now()); ok {
		e.RetryAfter = ra
	}
	var env struct {
		Error *struct {
			Code        string `json:"code"`
			Message     string `json:"message"`
			FieldErrors []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"field_errors"`
		} `json:"error"`
		Meta struct {
			RequestID string `json:"request_id"`
		} `json:"meta"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		e.Message = strings.TrimSpace(http.StatusText(resp.StatusCode) + ": " + string(body[:min(len(body), 200)]))
		return e
	}
	e.Code, e.Message = env.Error.Code, env.Error.Message
	for _, f := range env.Error.FieldErrors {
		e.FieldErrors = append(e.FieldErrors, FieldError{Field: f.Field, Message: f.Message})
	}
	if env.Meta.RequestID != "" {
		e.RequestID = env.Meta.RequestID
	}
	return e
}
